#include "trace/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <netinet/in.h>
#include <sys/socket.h>

namespace rstwatch {

static_assert(std::size_t(Verdict::unknown) + 1 == kVerdicts, "a new Verdict needs kVerdicts");

void MetricsRegistry::set_build_info(BuildInfo b) {
    std::lock_guard lock(mu_);
    view_.build = std::move(b);
}

void MetricsRegistry::publish(const TraceCounters &c) {
    std::lock_guard lock(mu_);
    view_.counters = c;
}

void MetricsRegistry::publish_audit(AuditGauges g) {
    std::lock_guard lock(mu_);
    view_.audit = std::move(g);
}

MetricsRegistry::View MetricsRegistry::read() const {
    std::lock_guard lock(mu_);
    return view_;
}

std::size_t keepalive_option_index(int level, int optname) {
    if (level == SOL_SOCKET && optname == SO_KEEPALIVE) return 0;
    if (level != IPPROTO_TCP) return kKeepaliveOptions;
    switch (optname) {
    case 4: // TCP_KEEPIDLE
        return 1;
    case 5: // TCP_KEEPINTVL
        return 2;
    case 6: // TCP_KEEPCNT
        return 3;
    case 18: // TCP_USER_TIMEOUT
        return 4;
    case 9: // SO_KEEPALIVE's number at the TCP level (TCP_DEFER_ACCEPT): misdirected
        return 0;
    }
    return kKeepaliveOptions;
}

std::string prometheus_label_value(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if (c == '\\')
                out += "\\\\";
            else if (c == '"')
                out += "\\\"";
            else if (c == '\n')
                out += "\\n";
            else
                out += char(c);
            ++i;
            continue;
        }
        // A well-formed UTF-8 sequence is copied; anything else is U+FFFD.
        std::size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        bool ok = len && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
        if (ok && len == 2 && c < 0xc2) ok = false; // overlong
        if (ok && len == 3) {
            unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
            if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) ok = false;
        }
        if (ok && len == 4) {
            unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
            if (c > 0xf4 || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) ok = false;
        }
        if (ok) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xef\xbf\xbd";
            ++i;
        }
    }
    return out;
}

std::vector<CommGauge> top_comm_gauges(const std::vector<AuditProcess> &processes,
                                       std::size_t top_n) {
    std::map<std::string, CommGauge> by_name;
    for (const auto &p : processes) {
        CommGauge &g = by_name[p.comm];
        g.comm = p.comm;
        g.connections += p.sockets;
        g.without_keepalive += p.without_keepalive;
    }
    std::vector<CommGauge> all;
    all.reserve(by_name.size());
    for (auto &[name, g] : by_name)
        all.push_back(std::move(g));
    std::stable_sort(all.begin(), all.end(), [](const CommGauge &a, const CommGauge &b) {
        if (a.without_keepalive != b.without_keepalive)
            return a.without_keepalive > b.without_keepalive;
        return a.connections > b.connections; // names already in order (stable)
    });
    if (all.size() <= top_n) return all;
    CommGauge other{"other", 0, 0};
    for (std::size_t i = top_n; i < all.size(); ++i) {
        other.connections += all[i].connections;
        other.without_keepalive += all[i].without_keepalive;
    }
    all.resize(top_n);
    // A process really named "other" shares the series with the rest.
    auto same = std::find_if(all.begin(), all.end(), [](auto &g) { return g.comm == "other"; });
    if (same != all.end()) {
        same->connections += other.connections;
        same->without_keepalive += other.without_keepalive;
    } else {
        all.push_back(other);
    }
    return all;
}

namespace {

constexpr std::array<Verdict, kVerdicts> kAllVerdicts = {
    Verdict::keepalive_disabled, Verdict::keepalive_too_slow, Verdict::not_idle,
    Verdict::no_socket,          Verdict::local_abort,        Verdict::unknown};
constexpr std::array<std::string_view, kTimeoutCauses> kCauseNames = {"unknown", "retransmit",
                                                                      "keepalive", "user_timeout"};
constexpr std::array<std::string_view, kKeepaliveOptions> kOptionNames = {
    "SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT"};
constexpr std::array<std::string_view, kSockoptResults> kResultNames = {"ok", "error",
                                                                        "misdirected"};
constexpr std::array<std::string_view, 4> kRecordNames = {"tcp_reset", "keepalive_set",
                                                          "connection", "keepalive_enforced"};

// Appends families and samples; label values must already be escaped.
class Exposition {
  public:
    explicit Exposition(std::string &out) : out_(out) {}
    Exposition &family(std::string_view name, std::string_view type, std::string_view help) {
        name_ = name;
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
        return *this;
    }
    // labels: "a=\"x\",b=\"y\"" or empty.
    Exposition &sample(std::string_view labels, std::uint64_t v) {
        head(labels);
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof(buf), v);
        out_.append(buf, r.ptr);
        out_ += '\n';
        return *this;
    }
    Exposition &sample_double(std::string_view labels, double v) {
        head(labels);
        char buf[40];
        auto r = std::to_chars(buf, buf + sizeof(buf), v);
        out_.append(buf, r.ptr);
        out_ += '\n';
        return *this;
    }

  private:
    void head(std::string_view labels) {
        out_ += name_;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
    }
    std::string &out_;
    std::string_view name_;
};

std::string label(std::string_view k, std::string_view v) {
    std::string s(k);
    s += "=\"";
    s += v;
    s += '"';
    return s;
}

std::string labels(std::string_view k1, std::string_view v1, std::string_view k2,
                   std::string_view v2) {
    return label(k1, v1) + "," + label(k2, v2);
}

// rstwatch_build_info and the start time.
void render_session(Exposition &e, const MetricsRegistry::View &v) {
    e.family("rstwatch_build_info", "gauge",
             "Always 1; labels: rstwatch version, kernel release, and features available on "
             "this kernel.");
    e.sample(label("version", prometheus_label_value(v.build.version)) + "," +
                 label("kernel", prometheus_label_value(v.build.kernel)) + "," +
                 label("kernel_reason", v.build.kernel_reason ? "true" : "false") + "," +
                 label("setsockopt_hook", prometheus_label_value(v.build.setsockopt_hook)),
             1);
    e.family("rstwatch_start_time_seconds", "gauge",
             "When this trace session started, in seconds since the Unix epoch.");
    e.sample_double("", v.build.start_time_unix_s);
}

// Resets, timeouts and keepalive setsockopt calls, by verdict / cause / option.
void render_connections(Exposition &e, const MetricsRegistry::View &v, const TraceCounters &c) {
    e.family("rstwatch_resets_total", "counter",
             "TCP resets traced (after kernel-side filters), by direction and verdict.");
    for (std::size_t d = 0; d < 2; ++d)
        for (std::size_t i = 0; i < kVerdicts; ++i)
            e.sample(labels("direction", d == 0 ? "sent" : "received", "verdict",
                            to_string(kAllVerdicts[i])),
                     c.resets[d][i]);

    e.family("rstwatch_timeouts_total", "counter",
             "Connections the kernel aborted because the peer stopped answering, by cause and "
             "verdict.");
    for (std::size_t k = 1; k < kTimeoutCauses; ++k)
        for (std::size_t i = 0; i < kVerdicts; ++i)
            e.sample(labels("cause", kCauseNames[k], "verdict", to_string(kAllVerdicts[i])),
                     c.timeouts[k][i]);
    if (std::any_of(c.timeouts[0].begin(), c.timeouts[0].end(), [](auto n) { return n != 0; }))
        for (std::size_t i = 0; i < kVerdicts; ++i)
            e.sample(labels("cause", kCauseNames[0], "verdict", to_string(kAllVerdicts[i])),
                     c.timeouts[0][i]);

    if (v.build.keepalive_events) {
        e.family("rstwatch_keepalive_options_set_total", "counter",
                 "Keepalive setsockopt calls seen (--events keepalive), by option and result "
                 "(misdirected: SO_KEEPALIVE at the IPPROTO_TCP level).");
        for (std::size_t o = 0; o < kKeepaliveOptions; ++o)
            for (std::size_t r = 0; r < kSockoptResults; ++r) {
                if (r == 2 && o != 0) continue;
                e.sample(labels("option", kOptionNames[o], "result", kResultNames[r]),
                         c.keepalive_set[o][r]);
            }
    }
}

// What happened to events on their way out, and config reloads.
void render_pipeline(Exposition &e, const TraceCounters &c) {
    e.family("rstwatch_events_emitted_total", "counter",
             "Event lines written to the output, by event type.");
    for (std::size_t k = 0; k + 1 < kEventKinds; ++k)
        e.sample(label("event", kEventKindNames[k]), c.emitted[k]);
    e.family("rstwatch_events_filtered_total", "counter",
             "Events dropped by filters: in the kernel before the ring buffer, or in userspace "
             "(--verdict).");
    e.sample(label("stage", "kernel"), c.filtered_kernel);
    e.sample(label("stage", "userspace"), c.filtered_user);
    e.family("rstwatch_events_lost_total", "counter",
             "Events lost: ring buffer full (the kernel could not queue them) or output write "
             "errors.");
    std::uint64_t rb = 0;
    for (auto n : c.ringbuf_lost)
        rb += n;
    e.sample(label("reason", "ringbuf_full"), rb);
    e.sample(label("reason", "write_error"), c.write_dropped);
    e.family("rstwatch_events_rate_limited_total", "counter",
             "Events suppressed by --max-events-per-sec, by event type.");
    for (std::size_t k = 0; k < 4; ++k)
        e.sample(label("event", kEventKindNames[k]), c.rate_limited[k]);
    e.family("rstwatch_ringbuf_lost_total", "counter",
             "Failed ring-buffer reservations in the kernel, by record type.");
    for (std::size_t k = 0; k < kRecordNames.size(); ++k)
        e.sample(label("record", kRecordNames[k]), c.ringbuf_lost[k]);
    e.family("rstwatch_records_malformed_total", "counter",
             "Ring-buffer records that failed to decode (dropped).");
    e.sample("", c.malformed);

    e.family("rstwatch_config_reloads_total", "counter", "SIGHUP reloads of --config, by result.");
    e.sample(label("result", "success"), c.config_reloads_ok);
    e.sample(label("result", "failure"), c.config_reloads_failed);
    e.family("rstwatch_config_last_reload_successful", "gauge",
             "1 if the last config reload succeeded (or none happened), else 0.");
    e.sample("", c.last_reload_ok ? 1 : 0);
}

// The last periodic audit (--audit-interval).
void render_audit(Exposition &e, const MetricsRegistry::View &v) {
    const AuditGauges &a = v.audit;
    e.family("rstwatch_audit_runs_total", "counter", "Periodic audits run (--audit-interval).");
    e.sample("", a.runs);
    if (a.runs) {
        e.family("rstwatch_audit_last_run_timestamp_seconds", "gauge",
                 "When the last audit ran, in seconds since the Unix epoch.");
        e.sample_double("", a.last_run_unix_s);
        e.family("rstwatch_audit_duration_seconds", "gauge",
                 "How long the last audit took (socket iterator and records).");
        e.sample_double("", a.duration_s);
        e.family("rstwatch_audit_processes", "gauge",
                 "Processes holding TCP connections at the last audit.");
        e.sample("", a.processes);
        e.family("rstwatch_audit_connections", "gauge",
                 "TCP connections at the last audit, per process name (top N by connections "
                 "without keepalive, the rest as comm=\"other\").");
        for (const auto &g : a.by_comm)
            e.sample(label("comm", prometheus_label_value(g.comm)), g.connections);
        e.family("rstwatch_audit_connections_without_keepalive", "gauge",
                 "TCP connections without SO_KEEPALIVE at the last audit, per process name "
                 "(same series as rstwatch_audit_connections).");
        for (const auto &g : a.by_comm)
            e.sample(label("comm", prometheus_label_value(g.comm)), g.without_keepalive);
    }
}

// The metrics endpoint itself.
void render_http(Exposition &e, const HttpCounters &http) {
    e.family("rstwatch_metrics_requests_total", "counter",
             "HTTP requests answered by the metrics endpoint.");
    e.sample("", http.requests.load(std::memory_order_relaxed));
    e.family("rstwatch_metrics_rejected_total", "counter",
             "Metrics connections refused or cut: busy (all workers taken), too_large "
             "(headers over the limit), timeout (too slow).");
    e.sample(label("reason", "busy"), http.busy.load(std::memory_order_relaxed));
    e.sample(label("reason", "too_large"), http.too_large.load(std::memory_order_relaxed));
    e.sample(label("reason", "timeout"), http.timeout.load(std::memory_order_relaxed));
}

} // namespace

std::string render_prometheus(const MetricsRegistry::View &v, const HttpCounters &http) {
    std::string out;
    out.reserve(8192 + v.audit.by_comm.size() * 160);
    Exposition e(out);
    const TraceCounters &c = v.counters;
    render_session(e, v);
    render_connections(e, v, c);
    render_pipeline(e, c);
    render_audit(e, v);
    render_http(e, http);
    return out;
}

} // namespace rstwatch
