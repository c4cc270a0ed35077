#include <arpa/inet.h>
#include <cstdio>
#include <cstring>

#include "util/clock.hpp"
#include "event/events.hpp"
#include "util/json_writer.hpp"
#include "report/format.hpp"

namespace rstwatch {

namespace {

constexpr std::string_view kOptionNames[] = {"SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL",
                                             "TCP_KEEPCNT", "TCP_USER_TIMEOUT"};

} // namespace

std::string report_addr_text(const std::array<std::uint8_t, 16> &a) {
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[64];
    if (std::memcmp(a.data(), mapped, 12) == 0) {
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        return buf;
    }
    return inet_ntop(AF_INET6, a.data(), buf, sizeof buf) ? buf : "?";
}

namespace {

class Out {
  public:
    Out(std::string &out, std::string_view host, std::int64_t ts_ns) : out_(out), host_(host) {
        ts_.append(ts_text_, ts_ns);
    }

    JsonWriter begin(std::string_view event) {
        JsonWriter w(out_);
        w.begin_object();
        w.field_num("v", kSchemaVersion).field("event", event).field("ts", ts_text_);
        w.field("host", host_);
        return w;
    }
    void end(JsonWriter &w) {
        w.end_object();
        out_.push_back('\n');
    }
    std::string ts(std::int64_t ns) {
        std::string s;
        conv_.append(s, ns);
        return s;
    }

  private:
    std::string &out_;
    std::string_view host_;
    std::string ts_text_;
    Rfc3339 ts_, conv_;
};

void opt_u64(JsonWriter &w, std::string_view k, bool known, std::uint64_t v) {
    if (known)
        w.field_unum(k, v);
    else
        w.field_null(k);
}

void opt_str(JsonWriter &w, std::string_view k, std::string_view v) {
    if (v.empty())
        w.field_null(k);
    else
        w.field(k, v);
}

void process_obj(JsonWriter &w, const ProcessReport &p) {
    if (!p.owned) {
        w.field_null("process");
        return;
    }
    w.key("process").begin_object();
    w.field_unum("pid", p.pid).field("comm", p.comm).field_unum("uid", p.uid).end_object();
}

void endpoint(JsonWriter &w, std::string_view k, const ReportEndpoint &e) {
    w.key(k).begin_object().field("addr", report_addr_text(e.addr)).field_unum("port", e.port);
    w.end_object();
}

void by_verdict(JsonWriter &w, const std::array<std::uint64_t, kVerdictCount> &v) {
    w.key("by_verdict").begin_object();
    for (std::size_t i = 0; i < kVerdictCount; ++i)
        w.field_unum(to_string(Verdict(i)), v[i]);
    w.end_object();
}

void pair_side(JsonWriter &w, const ReportData &d, const PairSide &s,
               std::optional<std::uint64_t> bound_ms) {
    w.begin_object();
    w.field("source_host", d.hosts[s.host].name).field_unum("netns", s.netns);
    process_obj(w, d.processes[s.proc]);
    endpoint(w, "local", s.local);
    endpoint(w, "remote", s.remote);
    w.key("keepalive").begin_object();
    if (s.ka == KaState::unknown) {
        w.field_null("enabled").field_null("idle_s").field_null("below_bound");
    } else {
        w.field_bool("enabled", s.ka == KaState::on);
        opt_u64(w, "idle_s", s.ka == KaState::on, s.ka_idle_s);
        if (s.ka == KaState::on && bound_ms)
            w.field_bool("below_bound", std::uint64_t(s.ka_idle_s) * 1000 < *bound_ms);
        else if (s.ka == KaState::off)
            w.field_bool("below_bound", false);
        else
            w.field_null("below_bound");
    }
    w.end_object();
    if (s.death == DeathKind::none)
        w.field_null("death");
    else
        w.field("death", to_string(s.death));
    w.end_object();
}

std::string pair_explanation(const ReportData &d, const PairReport &p) {
    auto who = [&](const PairSide &s) {
        const ProcessReport &pr = d.processes[s.proc];
        std::string n = d.hosts[s.host].name + " ";
        n += pr.owned ? pr.comm + " (pid " + std::to_string(pr.pid) + ")" : "(owner unknown)";
        return n;
    };
    switch (p.status) {
    case PairStatus::both:
        return "Both ends had keepalive on.";
    case PairStatus::neither:
        return "Neither end had keepalive on: nothing keeps the middlebox entry alive while the "
               "connection idles.";
    case PairStatus::one_side: {
        const PairSide &on = p.a.ka == KaState::on ? p.a : p.b;
        const PairSide &off = p.a.ka == KaState::on ? p.b : p.a;
        return "Only one side fixed: " + who(on) + " had keepalive on, " + who(off) + " did not; " +
               who(off) + " never notices a vanished peer and depends on the other end's settings.";
    }
    case PairStatus::unknown:
        break;
    }
    return "The keepalive state of at least one end was not recorded.";
}

std::optional<std::uint64_t> bound_of(const ReportResult &r) {
    for (const auto &f : r.findings)
        if (f.kind == FindingKind::middlebox_idle_timeout) return f.cluster.bound_ms;
    return std::nullopt;
}

} // namespace

void format_report_json(const ReportResult &r, std::string_view host, std::int64_t ts_ns,
                        std::string &out) {
    Out o(out, host, ts_ns);
    const ReportData &d = r.data;
    const auto bound = bound_of(r);

    for (const auto &in : r.inputs) {
        JsonWriter w = o.begin("report_input");
        w.field("path", in.name == "<stdin>" ? std::string_view("-") : std::string_view(in.name));
        w.field("compression", in.stats.gzip ? "gzip" : "none");
        w.field_unum("bytes_read", in.stats.bytes_read).field_unum("bytes", in.stats.bytes);
        w.field_unum("lines", in.lines).field_unum("blank_lines", in.blank);
        w.field_unum("events", in.accepted);
        w.key("problems").begin_array();
        for (std::size_t i = 0; i < kLineProblemCount; ++i) {
            if (!in.problems[i]) continue;
            w.begin_object().field("class", to_string(LineProblem(i)));
            w.field_unum("count", in.problems[i]).field_unum("first_line", in.first_line[i]);
            w.end_object();
        }
        w.end_array();
        opt_str(w, "gzip_error", in.stats.gzip_error);
        o.end(w);
    }

    {
        JsonWriter w = o.begin("report_summary");
        std::uint64_t lost = 0, malformed = 0;
        for (const auto &h : d.hosts)
            lost += h.lost;
        for (auto n : r.problems)
            malformed += n;
        w.field_unum("inputs", r.inputs.size()).field_unum("lines", r.lines);
        w.field_unum("bytes", r.bytes).field_unum("events", d.events);
        w.field_unum("malformed", malformed);
        w.field_unum("hosts", d.hosts.size()).field_unum("processes", d.processes.size());
        w.field_unum("connections", d.connections);
        w.field_unum("resets", d.resets).field_unum("timeouts", d.timeouts);
        w.key("middlebox_deaths").begin_object();
        w.field_unum("total", d.middlebox.total).field_unum("idle_known", d.middlebox.known_idle);
        w.field_unum("inferred_origin", d.middlebox.inferred).end_object();
        w.field_unum("unresolved_resets", d.unresolved_resets);
        w.field_unum("duplicates", d.duplicates).field_unum("ignored_report_lines", d.ignored);
        w.field_unum("lost_events", lost);
        const PairCounts &pc = d.pair_counts;
        w.key("pairs").begin_object();
        w.field_unum("total", pc.total).field_unum("both", pc.both);
        w.field_unum("neither", pc.neither).field_unum("one_side", pc.one_side);
        w.field_unum("unknown", pc.unknown).field_unum("ambiguous", pc.ambiguous);
        w.field_unum("emitted", pc.emitted).field_unum("omitted", pc.omitted);
        w.end_object();
        w.key("problems").begin_array();
        for (std::size_t i = 0; i < kLineProblemCount; ++i) {
            if (!r.problems[i]) continue;
            w.begin_object().field("class", to_string(LineProblem(i)));
            w.field_unum("count", r.problems[i]);
            w.field("first_input", r.first_input[i] == "<stdin>" ? "-" : r.first_input[i]);
            w.field_unum("first_line", r.first_line[i]).end_object();
        }
        w.end_array();
        w.key("unknown_events").begin_array();
        for (const auto &n : r.unknown_events)
            w.str(n);
        w.end_array();
        opt_u64(w, "configured_timeout_ms", bool(r.configured_ms), r.configured_ms.value_or(0));
        o.end(w);
    }

    for (const auto &f : r.findings) {
        JsonWriter w = o.begin("report_finding");
        w.field("kind", to_string(f.kind)).field("summary", f.summary);
        if (f.kind == FindingKind::one_side_keepalive) {
            w.field_unum("pairs", f.pairs);
            w.key("examples").begin_array();
            for (std::size_t i : f.examples) {
                w.begin_array();
                pair_side(w, d, d.pairs[i].a, bound);
                pair_side(w, d, d.pairs[i].b, bound);
                w.end_array();
            }
            w.end_array();
            o.end(w);
            continue;
        }
        const ClusterResult &c = f.cluster;
        w.field_unum("middlebox_deaths", c.deaths).field_unum("idle_at_least_floor", c.at_or_above);
        w.field_unum("below_floor", c.below_floor).field_unum("floor_ms", kClusterFloorMs);
        w.key("fraction").dbl(c.fraction);
        w.field_unum("inferred_origin", f.inferred);
        w.key("hosts").begin_array();
        for (auto h : f.hosts)
            w.str(d.hosts[h].name);
        w.end_array();
        if (f.kind == FindingKind::deaths_not_clustered) {
            o.end(w);
            continue;
        }
        w.field_unum("upper_bound_ms", c.bound_ms);
        opt_u64(w, "configured_timeout_ms", bool(f.configured_ms), f.configured_ms.value_or(0));
        if (f.consistent_with_configured)
            w.field_bool("consistent_with_configured", *f.consistent_with_configured);
        else
            w.field_null("consistent_with_configured");
        w.key("consistent_presets").begin_array();
        for (const auto &p : f.presets) {
            w.begin_object().field("name", p.name);
            w.field_unum("timeout_s", std::uint64_t(p.timeout.count()));
            w.field("behaviour", p.behaviour).end_object();
        }
        w.end_array();
        w.key("keepalive").begin_object();
        w.field_unum("idle_s", f.advice.idle_s).field_unum("interval_s", f.advice.interval_s);
        w.field_unum("probes", f.advice.probes).field("basis", f.advice.basis).end_object();
        w.key("commands").begin_array();
        for (const auto &cmd : f.commands)
            w.begin_object().field("what", cmd.what).field("command", cmd.command).end_object();
        w.end_array();
        w.key("affected").begin_array();
        for (const auto &a : f.affected) {
            const ProcessReport &p = d.processes[a.proc];
            w.begin_object().field("source_host", d.hosts[p.host].name);
            process_obj(w, p);
            opt_str(w, "cgroup", p.cgroup);
            w.field_unum("deaths", a.deaths).field("keepalive", a.keepalive);
            if (a.fix_command.empty())
                w.field_null("fix");
            else
                w.key("fix")
                    .begin_object()
                    .field("what", a.fix_what)
                    .field("command", a.fix_command)
                    .end_object();
            w.end_object();
        }
        w.end_array();
        w.field_unum("affected_omitted", f.affected_omitted);
        o.end(w);
    }

    std::uint64_t rank = 0;
    for (std::uint32_t pi : d.worst_first) {
        const ProcessReport &p = d.processes[pi];
        JsonWriter w = o.begin("report_process");
        w.field_unum("rank", ++rank).field("source_host", d.hosts[p.host].name);
        process_obj(w, p);
        opt_str(w, "cgroup", p.cgroup);
        opt_str(w, "container_id", p.container_id);
        w.field_unum("connections", p.connections());
        w.field_unum("without_keepalive", p.without_keepalive());
        w.key("resets").begin_object().field_unum("total", p.resets_total());
        w.field_unum("received", p.resets_received).field_unum("sent", p.resets_sent);
        by_verdict(w, p.resets);
        w.end_object();
        w.key("timeouts").begin_object().field_unum("total", p.timeouts_total());
        by_verdict(w, p.timeouts);
        w.end_object();
        w.field_unum("middlebox_deaths", p.mb_deaths);
        opt_u64(w, "min_middlebox_idle_ms", p.mb_min_idle_ms != UINT64_MAX, p.mb_min_idle_ms);
        w.key("keepalive_options_set").begin_array();
        for (unsigned i = 0; i < 5; ++i)
            if (p.ka_options & (1u << i)) w.str(kOptionNames[i]);
        w.end_array();
        o.end(w);
    }

    {
        const IdleHistogram &h = d.histogram;
        JsonWriter w = o.begin("report_histogram");
        w.field("field", "idle_ms").field("scale", "log2");
        int lo = -1, hi = -1;
        std::uint64_t all = 0, mb = 0;
        for (int b = 0; b < 65; ++b) {
            all += h.all[b];
            mb += h.middlebox[b];
            if (h.all[b] || h.middlebox[b]) {
                if (lo < 0) lo = b;
                hi = b;
            }
        }
        w.field_unum("deaths", all).field_unum("middlebox", mb);
        w.key("buckets").begin_array();
        for (int b = lo; lo >= 0 && b <= hi; ++b) {
            w.begin_object().field_unum("ge_ms", IdleHistogram::lower(unsigned(b)));
            if (b < 64)
                w.field_unum("lt_ms", IdleHistogram::upper(unsigned(b)));
            else
                w.field_null("lt_ms");
            w.field_unum("deaths", h.all[b]).field_unum("middlebox", h.middlebox[b]);
            w.end_object();
        }
        w.end_array();
        w.key("idle_unknown").begin_object();
        w.field_unum("deaths", h.all_unknown).field_unum("middlebox", h.middlebox_unknown);
        w.end_object();
        o.end(w);
    }

    for (const auto &p : d.pairs) {
        JsonWriter w = o.begin("report_pair");
        w.field("status", to_string(p.status)).field_bool("same_host", p.a.host == p.b.host);
        w.key("sides").begin_array();
        pair_side(w, d, p.a, bound);
        pair_side(w, d, p.b, bound);
        w.end_array();
        w.field("explanation", pair_explanation(d, p));
        o.end(w);
    }

    for (std::uint32_t hi : d.hosts_order) {
        const HostReport &h = d.hosts[hi];
        JsonWriter w = o.begin("report_host");
        w.field("source_host", h.name);
        const bool known = h.first_ts != INT64_MAX;
        if (known) {
            w.field("first_ts", o.ts(h.first_ts)).field("last_ts", o.ts(h.last_ts));
        } else {
            w.field_null("first_ts").field_null("last_ts");
        }
        w.field_unum("events", h.events).field_unum("sessions", h.sessions);
        w.field_unum("lost_events", h.lost).field_unum("processes", h.processes);
        w.field_unum("connections", h.connections);
        w.field_unum("resets", h.resets).field_unum("timeouts", h.timeouts);
        w.field_unum("middlebox_deaths", h.mb_deaths);
        opt_u64(w, "min_middlebox_idle_ms", h.mb_min_idle_ms != UINT64_MAX, h.mb_min_idle_ms);
        o.end(w);
    }
}

} // namespace rstwatch
