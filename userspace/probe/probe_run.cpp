// `rstwatch probe`: rounds of connections (engine) chosen by the search policy,
// every answer printed as it comes, a summary at the end.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "probe/probe.hpp"
#include "probe/probe_engine.hpp"
#include "util/error.hpp"
#include "util/middlebox.hpp"
#include "util/units.hpp"

namespace rstwatch {

namespace {

using json = nlohmann::ordered_json;
using std::chrono::milliseconds;
using namespace probe;

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_signal(int) {
    g_interrupted = 1;
}

// Restores the previous SIGINT/SIGTERM handlers when the probe ends.
class InterruptGuard {
  public:
    InterruptGuard() {
        struct sigaction sa {};
        sa.sa_handler = on_signal; // no SA_RESTART: poll() returns EINTR
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int_);
        sigaction(SIGTERM, &sa, &old_term_);
        g_interrupted = 0;
    }
    ~InterruptGuard() {
        sigaction(SIGINT, &old_int_, nullptr);
        sigaction(SIGTERM, &old_term_, nullptr);
    }

  private:
    struct sigaction old_int_ {
    }, old_term_{};
};

std::string now_rfc3339() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", t.tm_year + 1900,
                  t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec);
    return buf;
}

std::string this_host() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "unknown";
    return buf;
}

json ms_or_null(const std::optional<milliseconds> &m) {
    return m ? json(m->count()) : json(nullptr);
}

std::string secs(milliseconds m) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", double(m.count()) / 1000.0);
    return buf;
}

class Printer {
  public:
    Printer(std::ostream &out, bool text, std::string host)
        : out_(out), text_(text), host_(std::move(host)) {}

    void start(const ProbeOptions &o, const Target &t) {
        if (text_) {
            out_ << "probing " << t.spec << " (" << t.addr_text << " port " << t.port << ", "
                 << (t.ipv6 ? "IPv6" : "IPv4") << "): ";
            if (!o.policy.ladder.empty())
                out_ << "idle times " << ladder_text(o.policy.ladder);
            else
                out_ << "idle " << format_duration(o.policy.min) << " to "
                     << format_duration(o.policy.max) << ", precision " << o.policy.precision.text;
            out_ << ", " << o.policy.connections << " connections at once, at most "
                 << format_duration(o.max_time) << "; no payload is sent\n"
                 << std::flush;
            return;
        }
        json j = head("probe_start");
        j["target"] = target(t);
        j["family"] = t.ipv6 ? "ipv6" : "ipv4";
        json cfg;
        cfg["connections"] = o.policy.connections;
        cfg["min_s"] = o.policy.min.count() / 1000;
        cfg["max_s"] = o.policy.max.count() / 1000;
        cfg["precision"] = o.policy.precision.text;
        cfg["max_time_s"] = o.max_time.count() / 1000;
        cfg["interval_s"] = o.policy.interval.count() / 1000;
        if (o.policy.ladder.empty()) {
            cfg["ladder_s"] = nullptr;
        } else {
            cfg["ladder_s"] = json::array();
            for (auto l : o.policy.ladder)
                cfg["ladder_s"].push_back(l.count() / 1000);
        }
        j["config"] = cfg;
        line(j);
    }

    void result(const Target &t, unsigned round, const Result &r) {
        if (text_) {
            out_ << "  round " << round << "  idle " << format_duration(r.keepidle) << ": "
                 << outcome_name(r.outcome);
            if (r.evidence) out_ << " at " << secs(*r.evidence);
            if (!r.error.empty()) out_ << " (" << r.error << ")";
            if (r.outcome == Outcome::cancelled || r.outcome == Outcome::error)
                out_ << " [" << r.detail << "]";
            out_ << "\n" << std::flush;
            return;
        }
        json j = head("probe_result");
        j["target"] = target(t);
        j["round"] = round;
        j["local_port"] = r.local_port ? json(r.local_port) : json(nullptr);
        j["keepidle_s"] = r.keepidle.count() / 1000;
        j["outcome"] = outcome_name(r.outcome);
        j["detail"] = r.detail;
        j["error"] = r.error.empty() ? json(nullptr) : json(r.error);
        j["ended_after_ms"] = r.ended_after.count();
        j["evidence_ms"] = ms_or_null(r.evidence);
        j["server_sent_data"] = r.server_sent_data;
        line(j);
    }

    void summary(const ProbeOptions &o, const Target &t, const SearchPolicy &pol,
                 unsigned connections, milliseconds elapsed, bool server_rst) {
        const Bracket b = pol.bracket();
        const char *behaviour = nullptr;
        if (pol.resets() && !pol.drops())
            behaviour = "reset";
        else if (pol.drops() && !pol.resets())
            behaviour = "drop";
        else if (pol.drops() && pol.resets())
            behaviour = "mixed";
        // A timeout was measured when a middlebox answered (or ignored) a probe.
        const bool measured = b.upper && (pol.resets() || pol.drops());
        std::vector<std::string> presets;
        if (measured && b.lower)
            for (const auto &p : middlebox_presets()) {
                auto ms = std::chrono::duration_cast<milliseconds>(p.timeout);
                if (ms >= *b.lower && ms <= *b.upper) presets.emplace_back(p.name);
            }
        std::optional<KeepaliveAdvice> advice;
        // Keepalive cannot stop a server's own idle close: advice only when a
        // middlebox was measured.
        if (measured) advice = advise_keepalive(b.lower ? *b.lower : *b.upper / 2);
        std::string explanation = explain(o, pol, behaviour, presets, server_rst);

        if (text_) {
            out_ << "result: " << explanation << "\n";
            if (advice) {
                out_ << "keepalive to set: idle " << advice->idle_s << " s, interval "
                     << advice->interval_s << " s, " << advice->probes << " probes\n"
                     << "  host-wide (sockets with SO_KEEPALIVE on): " << sysctl_text(*advice)
                     << "\n"
                     << "  per socket: " << setsockopt_text(*advice) << "\n";
            }
            out_ << "(" << connections << " connections in " << pol.rounds() << " round"
                 << (pol.rounds() == 1 ? "" : "s") << ", " << format_duration(elapsed) << ")\n"
                 << std::flush;
            return;
        }
        json j = head("probe_summary");
        j["target"] = target(t);
        j["bracket"] = {{"lower_ms", ms_or_null(b.lower)}, {"upper_ms", ms_or_null(b.upper)}};
        j["middlebox"] = measured;
        j["behaviour"] = behaviour ? json(behaviour) : json(nullptr);
        j["closed_by_server_ms"] = ms_or_null(pol.server_close());
        j["preset"] = presets.empty() ? json(nullptr) : json(presets.front());
        j["presets"] = presets;
        j["precision"] = {{"goal", o.policy.precision.text}, {"met", pol.precision_met()}};
        j["stop_reason"] = stop_reason_name(pol.stop_reason());
        j["rounds"] = pol.rounds();
        j["connections"] = connections;
        j["inconsistent"] = pol.inconsistent();
        j["elapsed_ms"] = elapsed.count();
        if (advice)
            j["recommendation"] = {{"idle_s", advice->idle_s},
                                   {"interval_s", advice->interval_s},
                                   {"probes", advice->probes},
                                   {"sysctl", sysctl_text(*advice)},
                                   {"setsockopt", setsockopt_text(*advice)}};
        else
            j["recommendation"] = nullptr;
        j["explanation"] = explanation;
        line(j);
    }

  private:
    json head(const char *event) {
        json j;
        j["v"] = 1;
        j["event"] = event;
        j["ts"] = now_rfc3339();
        j["host"] = host_;
        return j;
    }
    static json target(const Target &t) {
        return {{"spec", t.spec}, {"addr", t.addr_text}, {"port", t.port}};
    }
    void line(const json &j) {
        out_ << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
    }
    static std::string ladder_text(const std::vector<milliseconds> &l) {
        std::string s;
        for (auto m : l)
            s += (s.empty() ? "" : ",") + format_duration(m);
        return s;
    }
    static std::string sysctl_text(const KeepaliveAdvice &a) {
        return "sysctl -w net.ipv4.tcp_keepalive_time=" + std::to_string(a.idle_s) +
               " net.ipv4.tcp_keepalive_intvl=" + std::to_string(a.interval_s) +
               " net.ipv4.tcp_keepalive_probes=" + std::to_string(a.probes);
    }
    static std::string setsockopt_text(const KeepaliveAdvice &a) {
        return "setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1); setsockopt(fd, IPPROTO_TCP, "
               "TCP_KEEPIDLE, " +
               std::to_string(a.idle_s) + "); setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, " +
               std::to_string(a.interval_s) + "); setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, " +
               std::to_string(a.probes) + ")";
    }
    static std::string explain(const ProbeOptions &o, const SearchPolicy &pol,
                               const char *behaviour, const std::vector<std::string> &presets,
                               bool server_rst) {
        const Bracket b = pol.bracket();
        std::string how = behaviour && std::string(behaviour) == "reset"
                              ? "answers a packet of a forgotten connection with an RST"
                          : behaviour && std::string(behaviour) == "drop"
                              ? "drops packets of a forgotten connection silently"
                              : "forgets idle connections (both RSTs and silent drops seen)";
        std::string s;
        if (b.upper && (pol.resets() || pol.drops())) {
            s = "a middlebox on the path forgets a connection idle for between " +
                (b.lower ? secs(*b.lower) : std::string("0 s")) + " and " + secs(*b.upper) +
                " and " + how;
            if (!presets.empty()) s += "; this matches the " + presets.front() + " preset";
            s += ".";
            if (pol.server_close())
                s += " The server also closes idle connections itself after " +
                     secs(*pol.server_close()) + ".";
        } else if (pol.server_close()) {
            s = "the server closes idle connections itself after " + secs(*pol.server_close()) +
                " (its FIN or RST came before any keepalive probe could test the path); no "
                "middlebox forgot the connection before that, so its timeout, if any, is "
                "longer and cannot be measured against this server.";
            // Seen from here, an RST before the probe is the server's abort or
            // a middlebox that resets idle flows actively at expiry.
            if (server_rst)
                s += " The close was an RST before any probe left: the server aborted the "
                     "connection, or a middlebox that actively resets idle flows at expiry "
                     "(such as Azure Load Balancer with \"TCP reset on idle\") sent it; "
                     "`rstwatch trace` on the server shows whether the server sent it.";
        } else if (pol.stop_reason() == StopReason::above_max ||
                   (pol.stop_reason() == StopReason::ladder && b.lower)) {
            s = "every connection survived up to " + (b.lower ? secs(*b.lower) : "?") +
                ": no middlebox on the path forgot an idle connection within " +
                (o.policy.ladder.empty() ? format_duration(o.policy.max)
                                         : format_duration(o.policy.ladder.back())) +
                ".";
        } else if (pol.stop_reason() == StopReason::no_connection) {
            s = "no connection to the target could be made; nothing was measured.";
        } else {
            s = "not enough answers to bracket a timeout (stopped: " +
                std::string(stop_reason_name(pol.stop_reason())) + ").";
        }
        switch (pol.stop_reason()) {
        case StopReason::resolution:
            s += " The bracket is as narrow as whole-second keepalive times allow.";
            break;
        case StopReason::max_time:
            s += " --max-time ran out before the precision " + o.policy.precision.text +
                 " was reached.";
            break;
        case StopReason::below_min:
            s += " Even the shortest idle time tried (" + format_duration(o.policy.min) +
                 ") was too long: try a smaller --min.";
            break;
        default:
            break;
        }
        return s;
    }

    std::ostream &out_;
    bool text_;
    std::string host_;
};

} // namespace

int run_probe(const ProbeOptions &opts) {
    return run_probe(opts, std::cout);
}

int run_probe(const ProbeOptions &opts, std::ostream &out) {
    const Target target = resolve_target(opts.target);
    Printer print(out, opts.text, this_host());
    InterruptGuard interrupts;
    print.start(opts, target);

    SearchPolicy policy(opts.policy);
    Engine engine(target, opts.policy.interval);
    const auto begin = Clock::now();
    const auto deadline = begin + opts.max_time;
    unsigned connections = 0;
    bool interrupted = false, server_rst = false;

    auto handle = [&](unsigned round, const std::vector<Result> &results) {
        for (const Result &r : results) {
            print.result(target, round, r);
            if (r.detail == "rst_before_probe") server_rst = true;
            if (r.evidence)
                policy.record({r.keepidle, r.outcome, *r.evidence});
            else
                policy.record({r.keepidle, r.outcome, milliseconds(0)});
        }
    };

    for (unsigned round = 1; !interrupted; ++round) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        auto ts = policy.next_round(left);
        if (ts.empty()) break;
        engine.start(ts);
        connections += unsigned(ts.size());
        while (!engine.active().empty()) {
            if (g_interrupted) {
                handle(round, engine.cancel_all("interrupted"));
                interrupted = true;
                break;
            }
            if (Clock::now() >= deadline) {
                handle(round, engine.cancel_all("max_time"));
                policy.stop(StopReason::max_time);
                break;
            }
            handle(round, engine.wait(deadline));
            // Connections whose answer the others already imply.
            std::vector<milliseconds> implied;
            for (milliseconds t : engine.active())
                if (!policy.still_needed(t)) implied.push_back(t);
            if (!implied.empty()) handle(round, engine.cancel(implied, "implied"));
        }
    }
    if (interrupted) policy.stop(StopReason::interrupted);
    const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
    print.summary(opts, target, policy, connections, elapsed, server_rst);
    if (policy.stop_reason() == StopReason::no_connection)
        throw Error(Exit::runtime, "probe: no connection to " + target.spec + " (" +
                                       target.addr_text +
                                       ") could be made; is the service up "
                                       "and reachable?");
    return 0;
}

} // namespace rstwatch
