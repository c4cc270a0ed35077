// Text output for people in a terminal: one aligned line per event, and at the
// end of a session the per-process table and a log2 histogram of idle time at
// death, so "resets cluster at one idle interval" is visible at a glance.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <netinet/in.h>

#include "output/format.hpp"
#include "util/histogram.hpp"
#include "util/net.hpp"
#include "util/text_safety.hpp"
#include "util/units.hpp"

namespace rstwatch {

namespace {

const char *const kRed = "\033[31m";
const char *const kYellow = "\033[33m";
const char *const kGreen = "\033[32m";
const char *const kDim = "\033[2m";
const char *const kBold = "\033[1m";
const char *const kReset = "\033[0m";

std::string clock_time(std::int64_t ts_ns) {
    time_t t = time_t(ts_ns / 1'000'000'000);
    tm parts{};
    localtime_r(&t, &parts);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min,
                  parts.tm_sec, int(ts_ns / 1'000'000 % 1000));
    return buf;
}

std::string human_ms(std::uint64_t ms) {
    char buf[32];
    if (ms < 1000)
        std::snprintf(buf, sizeof(buf), "%llums", (unsigned long long)ms);
    else if (ms < 120'000)
        std::snprintf(buf, sizeof(buf), "%.1fs", double(ms) / 1000);
    else if (ms < 7'200'000)
        std::snprintf(buf, sizeof(buf), "%.1fm", double(ms) / 60'000);
    else
        std::snprintf(buf, sizeof(buf), "%.1fh", double(ms) / 3'600'000);
    return buf;
}

std::string endpoint(const std::uint8_t addr[16], std::uint16_t port, std::uint16_t family) {
    char buf[INET6_ADDRSTRLEN];
    std::string a(format_addr(addr, family, buf));
    if (a.find(':') != std::string::npos) a = "[" + a + "]";
    return a + ":" + std::to_string(port);
}

std::string who(const rw_owner &o) {
    if (!o.pid) return "-";
    return terminal_safe(o.comm) + "[" + std::to_string(o.pid) + "]";
}

std::string keepalive_text(const rw_keepalive &ka) {
    if (!ka.enabled) return "ka off";
    return "ka " + std::to_string(ka.idle_s) + "s" +
           ((ka.from_socket & RW_KA_IDLE_SOCKET) ? "" : "(sysctl)");
}

class TextFormatter final : public Formatter {
  public:
    explicit TextFormatter(bool color) : color_(color) {}

    void session_start(std::string &out, const SessionStart &e) override {
        char line[256];
        std::snprintf(line, sizeof(line),
                      "rstwatch %s on kernel %s: tracing (setsockopt via %s, %zu existing "
                      "sockets). Ctrl-C to stop.\n",
                      std::string(e.version).c_str(), std::string(e.kernel).c_str(),
                      std::string(e.setsockopt_hook).c_str(), std::size_t(e.seeded_sockets));
        out += line;
        header(out);
    }

    void reset(std::string &out, const ResetEvent &e) override {
        const rw_reset &r = e.rec;
        if (r.flags & RW_F_TIMERS) idle_hist_.add(r.tm.idle_ms);
        std::string what = r.direction == RW_DIR_SENT ? "RST-TX" : "RST-RX";
        std::string idle = (r.flags & RW_F_TIMERS) ? human_ms(r.tm.idle_ms) : "-";
        std::string ka = (r.flags & RW_F_FULLSOCK) ? keepalive_text(r.ka) : "-";
        std::string extra =
            r.direction == RW_DIR_RECEIVED ? "from " + std::string(to_string(e.origin)) : "";
        row(out, e.ts_ns, what, who(r.owner), r.ep, idle, ka, e.dx.verdict, extra);
    }

    void timeout(std::string &out, const TimeoutEvent &e) override {
        const rw_close &c = e.rec;
        idle_hist_.add(c.tm.idle_ms);
        std::string extra = std::string(c.cause == RW_CAUSE_KEEPALIVE      ? "keepalive"
                                        : c.cause == RW_CAUSE_USER_TIMEOUT ? "user-timeout"
                                                                           : "retransmit") +
                            " gave up after " + human_ms(c.unanswered_ms);
        row(out, e.ts_ns, "TIMEOUT", who(c.owner), c.ep, human_ms(c.tm.idle_ms),
            keepalive_text(c.ka), e.dx.verdict, extra);
    }

    void connection_closed(std::string &out, const ClosedEvent &e) override {
        const rw_close &c = e.rec;
        std::string dur = (c.flags & RW_F_AGE_KNOWN) ? "lived " + human_ms(c.tm.age_ms) : "";
        row(out, e.ts_ns, "CLOSE", who(c.owner), c.ep, human_ms(c.tm.idle_ms), keepalive_text(c.ka),
            std::nullopt, dur + ((c.flags & RW_F_KA_EVER) ? "" : " never keepalive"));
    }

    void keepalive_set(std::string &out, const KeepaliveSetEvent &e) override {
        const rw_sockopt &s = e.rec;
        char line[256];
        std::snprintf(line, sizeof(line), "%-12s %-7s %-22s fd %d %s=%d -> %s%s\n",
                      clock_time(e.ts_ns).c_str(), "SETOPT", who(s.owner).c_str(), s.fd,
                      std::string(sockopt_name(s.level, s.optname)).c_str(), s.value,
                      s.result == 0 ? "ok" : ("error " + std::to_string(s.result)).c_str(),
                      (s.level == IPPROTO_TCP && s.optname == 9)
                          ? " (level IPPROTO_TCP: this set TCP_DEFER_ACCEPT, keepalive stays off)"
                          : "");
        out += line;
    }

    void lost(std::string &out, const LostEvent &e) override {
        char line[200];
        std::snprintf(line, sizeof(line), "%s%-12s LOST    %llu events (%s), %llu in total%s\n",
                      paint(kRed), clock_time(e.ts_ns).c_str(), (unsigned long long)e.lost,
                      std::string(e.reason).c_str(), (unsigned long long)e.total, paint(kReset));
        out += line;
    }

    void process_summary(std::string &, std::int64_t, const ProcessSummary &p) override {
        procs_.push_back(p);
    }

    void session_summary(std::string &out, const SessionSummary &s) override {
        if (!procs_.empty()) {
            out += std::string("\n") + paint(kBold) + "Per process (worst first)" + paint(kReset) +
                   "\n";
            char line[256];
            std::snprintf(line, sizeof(line), "%-22s %6s %7s %8s %6s %6s %8s  %s\n", "PROCESS",
                          "CONNS", "NO-KA", "RST-RX", "RST-TX", "TMOUT", "OPEN",
                          "KEEPALIVE OPTIONS SET");
            out += line;
            for (const auto &p : procs_) {
                std::string opts;
                for (auto n : keepalive_option_names(p.keepalive_options))
                    opts += (opts.empty() ? "" : ",") + std::string(n);
                std::snprintf(
                    line, sizeof(line), "%s%-22s %6llu %7llu %8llu %6llu %6llu %8llu  %s%s\n",
                    p.without_keepalive ? paint(kRed) : "",
                    (terminal_safe(p.comm) + "[" + std::to_string(p.pid) + "]").c_str(),
                    (unsigned long long)p.connections, (unsigned long long)p.without_keepalive,
                    (unsigned long long)p.resets_received, (unsigned long long)p.resets_sent,
                    (unsigned long long)p.timeouts, (unsigned long long)p.open_connections,
                    opts.empty() ? "-" : opts.c_str(), p.without_keepalive ? paint(kReset) : "");
                out += line;
            }
        }
        if (idle_hist_.total()) {
            out += std::string("\n") + paint(kBold) + "Idle time before reset/timeout" +
                   paint(kReset) + "\n";
            out += idle_hist_.render("idle_ms");
        }
        char line[256];
        std::snprintf(line, sizeof(line),
                      "\n%llu events in %s (%llu resets, %llu timeouts); filtered %llu in kernel, "
                      "%llu here; lost %llu; rate-limited %llu; "
                      "dropped %llu; ended by %s\n",
                      (unsigned long long)s.emitted, human_ms(s.duration_ms).c_str(),
                      (unsigned long long)s.resets, (unsigned long long)s.timeouts,
                      (unsigned long long)s.filtered_kernel, (unsigned long long)s.filtered_user,
                      (unsigned long long)s.lost, (unsigned long long)s.rate_limited,
                      (unsigned long long)s.write_dropped, std::string(s.end_reason).c_str());
        out += line;
    }

    void audit_socket(std::string &out, const AuditSocket &a) override {
        const rw_snapshot &s = a.rec;
        if (!audit_socket_header_) {
            audit_socket_header_ = true;
            char line[200];
            std::snprintf(line, sizeof(line), "\n%-22s %4s %-26s %-26s %-12s %8s %-16s %s\n",
                          "PROCESS", "FD", "LOCAL", "REMOTE", "STATE", "IDLE", "KEEPALIVE", "RISK");
            out += line;
        }
        const char *risk = a.risk ? std::string_view(to_string(*a.risk)).data() : "-";
        const char *col = !a.risk                    ? (s.ka.enabled ? "" : paint(kYellow))
                          : *a.risk == Risk::expired ? paint(kRed)
                          : *a.risk == Risk::exposed ? paint(kYellow)
                                                     : paint(kGreen);
        char line[300];
        std::snprintf(line, sizeof(line), "%s%-22s %4d %-26s %-26s %-12s %8s %-16s %s%s%s\n", col,
                      who(s.owner).c_str(), s.fd,
                      endpoint(s.ep.local_addr, s.ep.local_port, s.ep.family).c_str(),
                      endpoint(s.ep.remote_addr, s.ep.remote_port, s.ep.family).c_str(),
                      std::string(tcp_state_name(s.ep.state)).c_str(),
                      human_ms(s.tm.idle_ms).c_str(), keepalive_text(s.ka).c_str(), risk,
                      a.shared ? " (shared)" : "", *col ? paint(kReset) : "");
        out += line;
    }

    void audit_process(std::string &out, const AuditProcess &a) override {
        if (!audit_process_header_) {
            audit_process_header_ = true;
            char line[200];
            std::snprintf(line, sizeof(line), "%-22s %7s %7s %10s  %s\n", "PROCESS", "SOCKETS",
                          "NO-KA", "MAX-IDLE", "RISK (expired/exposed/protected)");
            out += line;
        }
        std::string risk = "-";
        if (a.risk_counts)
            risk = std::to_string((*a.risk_counts)[0]) + "/" + std::to_string((*a.risk_counts)[1]) +
                   "/" + std::to_string((*a.risk_counts)[2]);
        char line[200];
        std::snprintf(line, sizeof(line), "%s%-22s %7llu %7llu %10s  %s%s\n",
                      a.without_keepalive ? paint(kYellow) : "",
                      (terminal_safe(a.comm) + "[" + std::to_string(a.pid) + "]").c_str(),
                      (unsigned long long)a.sockets, (unsigned long long)a.without_keepalive,
                      human_ms(a.max_idle_ms).c_str(), risk.c_str(),
                      a.without_keepalive ? paint(kReset) : "");
        out += line;
    }

  private:
    const char *paint(const char *code) const { return color_ ? code : ""; }

    void header(std::string &out) {
        char line[200];
        std::snprintf(line, sizeof(line), "%-12s %-7s %-22s %-47s %-12s %7s %-14s %s\n", "TIME",
                      "EVENT", "PROCESS", "LOCAL -> REMOTE", "STATE", "IDLE", "KEEPALIVE",
                      "VERDICT");
        out += line;
    }

    void row(std::string &out, std::int64_t ts, const std::string &what, const std::string &process,
             const rw_endpoints &ep, const std::string &idle, const std::string &ka,
             std::optional<Verdict> verdict, const std::string &extra) {
        const char *col = "";
        if (verdict &&
            (*verdict == Verdict::keepalive_disabled || *verdict == Verdict::keepalive_too_slow))
            col = paint(kRed);
        else if (verdict && (*verdict == Verdict::no_socket || *verdict == Verdict::local_abort))
            col = paint(kDim);
        std::string conn = endpoint(ep.local_addr, ep.local_port, ep.family) + " -> " +
                           endpoint(ep.remote_addr, ep.remote_port, ep.family);
        char line[400];
        std::snprintf(line, sizeof(line), "%s%-12s %-7s %-22s %-47s %-12s %7s %-14s %s%s%s%s\n",
                      col, clock_time(ts).c_str(), what.c_str(), process.c_str(), conn.c_str(),
                      std::string(tcp_state_name(ep.state)).c_str(), idle.c_str(), ka.c_str(),
                      verdict ? std::string(to_string(*verdict)).c_str() : "",
                      extra.empty() ? "" : "  ", extra.c_str(), *col ? paint(kReset) : "");
        out += line;
    }

    bool color_;
    Log2Histogram idle_hist_;
    std::vector<ProcessSummary> procs_;
    bool audit_socket_header_ = false;
    bool audit_process_header_ = false;
};

} // namespace

std::unique_ptr<Formatter> make_text_formatter(bool color) {
    return std::make_unique<TextFormatter>(color);
}

} // namespace rstwatch
