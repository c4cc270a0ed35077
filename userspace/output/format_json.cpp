// NDJSON output: one object per line, every line with "v", "event", "ts" and
// "host". Field names and meanings are the contract in docs/events.md and
// schema/events.schema.json.
#include <netinet/in.h>
#include <sys/socket.h>

#include "util/clock.hpp"
#include "output/format.hpp"
#include "output/json_fields.hpp"
#include "util/json_writer.hpp"
#include "util/net.hpp"

namespace rstwatch {

std::string_view to_string(Risk r) {
    switch (r) {
    case Risk::expired:
        return "expired";
    case Risk::exposed:
        return "exposed";
    case Risk::protected_:
        break;
    }
    return "protected";
}

std::vector<std::string_view> keepalive_option_names(std::uint32_t mask) {
    static constexpr std::string_view names[] = {"SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL",
                                                 "TCP_KEEPCNT", "TCP_USER_TIMEOUT"};
    std::vector<std::string_view> out;
    for (unsigned i = 0; i < 5; ++i)
        if (mask & (1u << i)) out.push_back(names[i]);
    return out;
}

std::string_view sockopt_name(int level, int optname) {
    if (level == SOL_SOCKET && optname == 9) return "SO_KEEPALIVE";
    if (level == IPPROTO_TCP) {
        switch (optname) {
        case 4:
            return "TCP_KEEPIDLE";
        case 5:
            return "TCP_KEEPINTVL";
        case 6:
            return "TCP_KEEPCNT";
        case 18:
            return "TCP_USER_TIMEOUT";
        case 9: // SO_KEEPALIVE's number at the wrong level: TCP_DEFER_ACCEPT
            return "SO_KEEPALIVE";
        }
    }
    return "UNKNOWN";
}

namespace {

using namespace json_fields;

std::string_view level_name(int level) {
    switch (level) {
    case SOL_SOCKET:
        return "SOL_SOCKET";
    case IPPROTO_TCP:
        return "IPPROTO_TCP";
    }
    return "OTHER";
}

std::string_view cause_name(std::uint8_t c) {
    switch (c) {
    case RW_CAUSE_RETRANSMIT:
        return "retransmit";
    case RW_CAUSE_KEEPALIVE:
        return "keepalive";
    case RW_CAUSE_USER_TIMEOUT:
        return "user_timeout";
    }
    return "unknown";
}

class JsonFormatter final : public Formatter {
  public:
    explicit JsonFormatter(std::string host) : envelope_(std::move(host)) {}

    void session_start(std::string &out, const SessionStart &e) override {
        JsonWriter w = begin(out, "session_start", e.ts_ns);
        w.field("version", e.version).field("kernel", e.kernel).field_unum("pid", e.pid);
        w.key("events").begin_array();
        for (auto &ev : e.events)
            w.str(ev);
        w.end_array();
        w.field("setsockopt_hook", e.setsockopt_hook);
        w.field_bool("kernel_reason_available", e.kernel_reason_available);
        w.field_unum("hz", e.hz).field_unum("ringbuf_bytes", e.ringbuf_bytes);
        w.field_unum("seeded_sockets", e.seeded_sockets).field_unum("startup_ms", e.startup_ms);
        end(w, out);
    }

    void reset(std::string &out, const ResetEvent &e) override {
        const rw_reset &r = e.rec;
        const bool has_sock = !(r.flags & RW_F_NO_SOCKET);
        const bool full = r.flags & RW_F_FULLSOCK;
        JsonWriter w = begin(out, "tcp_reset", e.ts_ns);
        w.field("direction", r.direction == RW_DIR_SENT ? "sent" : "received");
        connection(w, r.ep, r.tm.netns);
        owner(w, r.owner, e.cgroup);
        if (full)
            keepalive(w, r.ka);
        else
            w.field_null("keepalive");
        const bool timers = r.flags & RW_F_TIMERS;
        opt_ms(w, "idle_ms", timers, r.tm.idle_ms);
        opt_ms(w, "since_last_send_ms", timers, r.tm.since_send_ms);
        opt_ms(w, "age_ms", r.flags & RW_F_AGE_KNOWN, r.tm.age_ms);
        if (e.kernel_reason.empty())
            w.field_null("kernel_reason");
        else
            w.field("kernel_reason", e.kernel_reason);
        w.field("verdict", to_string(e.dx.verdict)).field("explanation", e.dx.explanation);
        w.field("origin", to_string(e.origin));
        ct_timeout(w, has_sock || r.tm.netns, r.tm.ct_timeout_s);
        end(w, out);
    }

    void timeout(std::string &out, const TimeoutEvent &e) override {
        const rw_close &c = e.rec;
        JsonWriter w = begin(out, "tcp_timeout", e.ts_ns);
        w.field("cause", cause_name(c.cause));
        connection(w, c.ep, c.tm.netns);
        owner(w, c.owner, e.cgroup);
        keepalive(w, c.ka);
        w.field_unum("idle_ms", c.tm.idle_ms).field_unum("unanswered_ms", c.unanswered_ms);
        w.field_unum("retransmits", c.retransmits).field_unum("probes", c.probes_out);
        opt_ms(w, "age_ms", c.flags & RW_F_AGE_KNOWN, c.tm.age_ms);
        w.field_num("error", -std::int64_t(c.sk_err)); // no overflow on INT_MIN
        w.field("verdict", to_string(e.dx.verdict)).field("explanation", e.dx.explanation);
        ct_timeout(w, true, c.tm.ct_timeout_s);
        end(w, out);
    }

    void connection_closed(std::string &out, const ClosedEvent &e) override {
        const rw_close &c = e.rec;
        JsonWriter w = begin(out, "connection_closed", e.ts_ns);
        connection(w, c.ep, c.tm.netns);
        owner(w, c.owner, e.cgroup);
        opt_ms(w, "duration_ms", c.flags & RW_F_AGE_KNOWN, c.tm.age_ms);
        w.field_bool("keepalive_ever_enabled", c.flags & RW_F_KA_EVER);
        keepalive(w, c.ka);
        w.key("keepalive_options_set").begin_array();
        for (auto n : keepalive_option_names(c.opts))
            w.str(n);
        w.end_array();
        w.field_unum("resets_received", c.resets_received).field_unum("resets_sent", c.resets_sent);
        w.field_num("error", -std::int64_t(c.sk_err)); // no overflow on INT_MIN
        end(w, out);
    }

    void keepalive_set(std::string &out, const KeepaliveSetEvent &e) override {
        const rw_sockopt &s = e.rec;
        JsonWriter w = begin(out, "keepalive_set", e.ts_ns);
        owner(w, s.owner, e.cgroup);
        w.field_num("fd", s.fd);
        w.field("option", sockopt_name(s.level, s.optname)).field("level", level_name(s.level));
        w.field_num("value", s.value).field_num("result", s.result);
        // IPPROTO_TCP + 9 sets TCP_DEFER_ACCEPT: keepalive stays off.
        w.field_bool("misdirected", s.level == IPPROTO_TCP && s.optname == 9);
        if (s.sock_id && s.ep.remote_port) {
            local_remote(w, s.ep);
        } else {
            w.field_null("family").field_null("local").field_null("remote");
        }
        if (s.sock_id)
            w.field_unum("netns", s.netns);
        else
            w.field_null("netns");
        end(w, out);
    }

    void lost(std::string &out, const LostEvent &e) override {
        JsonWriter w = begin(out, "lost", e.ts_ns);
        w.field("reason", e.reason).field_unum("lost", e.lost).field_unum("total", e.total);
        w.key("by_type").begin_object();
        w.field_unum("tcp_reset", e.by_type[0]).field_unum("keepalive_set", e.by_type[1]);
        w.field_unum("connection", e.by_type[2]).field_unum("keepalive_enforced", e.by_type[3]);
        w.end_object();
        if (e.by_event) {
            w.key("by_event").begin_object();
            for (EventKind k : {EventKind::tcp_reset, EventKind::tcp_timeout,
                                EventKind::connection_closed, EventKind::keepalive_set})
                w.field_unum(to_string(k), (*e.by_event)[std::size_t(k)]);
            w.end_object();
        } else {
            w.field_null("by_event");
        }
        end(w, out);
    }

    void process_summary(std::string &out, std::int64_t ts_ns, const ProcessSummary &p) override {
        JsonWriter w = begin(out, "process_summary", ts_ns);
        w.key("process")
            .begin_object()
            .field_unum("pid", p.pid)
            .field("comm", p.comm)
            .field_unum("uid", p.uid)
            .end_object();
        cgroup(w, p.cgroup);
        w.field_unum("connections", p.connections)
            .field_unum("open_connections", p.open_connections);
        w.field_unum("without_keepalive", p.without_keepalive);
        w.field_unum("resets_received", p.resets_received).field_unum("resets_sent", p.resets_sent);
        w.field_unum("timeouts", p.timeouts);
        w.key("keepalive_options_set").begin_array();
        for (auto n : keepalive_option_names(p.keepalive_options))
            w.str(n);
        w.end_array();
        end(w, out);
    }

    void session_summary(std::string &out, const SessionSummary &s) override {
        JsonWriter w = begin(out, "session_summary", s.ts_ns);
        w.field_unum("duration_ms", s.duration_ms).field("end_reason", s.end_reason);
        w.field_unum("emitted", s.emitted).field_unum("filtered_kernel", s.filtered_kernel);
        w.field_unum("filtered_user", s.filtered_user).field_unum("lost", s.lost);
        w.field_unum("rate_limited", s.rate_limited).field_unum("write_dropped", s.write_dropped);
        w.field_unum("malformed", s.malformed);
        w.field_unum("resets", s.resets).field_unum("timeouts", s.timeouts);
        end(w, out);
    }

    void audit_socket(std::string &out, const AuditSocket &a) override {
        const rw_snapshot &s = a.rec;
        JsonWriter w = begin(out, "audit_socket", a.ts_ns);
        owner(w, s.owner, a.cgroup);
        w.field_num("fd", s.fd).field_bool("shared", a.shared);
        connection(w, s.ep, s.tm.netns);
        keepalive(w, s.ka);
        w.field_bool("keepalive_ever_enabled", s.flags & RW_F_KA_EVER);
        w.field_unum("idle_ms", s.tm.idle_ms).field_unum("since_last_send_ms", s.tm.since_send_ms);
        opt_ms(w, "age_ms", s.flags & RW_F_AGE_KNOWN, s.tm.age_ms);
        if (a.risk)
            w.field("risk", to_string(*a.risk));
        else
            w.field_null("risk");
        ct_timeout(w, true, s.tm.ct_timeout_s);
        end(w, out);
    }

    void audit_process(std::string &out, const AuditProcess &a) override {
        JsonWriter w = begin(out, "audit_process", a.ts_ns);
        w.key("process")
            .begin_object()
            .field_unum("pid", a.pid)
            .field("comm", a.comm)
            .field_unum("uid", a.uid)
            .end_object();
        cgroup(w, a.cgroup);
        w.field_unum("sockets", a.sockets).field_unum("without_keepalive", a.without_keepalive);
        w.field_unum("max_idle_ms", a.max_idle_ms);
        if (a.risk_counts) {
            w.key("risk").begin_object();
            w.field_unum("expired", (*a.risk_counts)[0]).field_unum("exposed", (*a.risk_counts)[1]);
            w.field_unum("protected", (*a.risk_counts)[2]).end_object();
        } else {
            w.field_null("risk");
        }
        end(w, out);
    }

  private:
    JsonWriter begin(std::string &out, std::string_view event, std::int64_t ts_ns) {
        return envelope_.begin(out, event, ts_ns);
    }
    static void end(JsonWriter &w, std::string &out) { Envelope::end(w, out); }

    static void opt_ms(JsonWriter &w, std::string_view k, bool known, std::uint64_t v) {
        if (known)
            w.field_unum(k, v);
        else
            w.field_null(k);
    }

    static void ct_timeout(JsonWriter &w, bool known, std::uint32_t s) {
        if (known && s)
            w.field_unum("conntrack_timeout_s", s);
        else
            w.field_null("conntrack_timeout_s");
    }

    Envelope envelope_;
};

} // namespace

std::unique_ptr<Formatter> make_json_formatter(std::string host) {
    return std::make_unique<JsonFormatter>(std::move(host));
}

} // namespace rstwatch
