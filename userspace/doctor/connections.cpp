// doctor, judging the connections: keepalive_off_connections from an audit of
// the namespace's sockets, and the exit code of a whole run.
#include <algorithm>

#include "doctor/doctor.hpp"
#include "doctor/wording.hpp"

namespace rstwatch::doctor {

Check connections_check(const AuditResult &audit, const std::optional<TimeoutBound> &bound,
                        const NetnsFacts &f, const Context &ctx) {
    Check c;
    c.id = "keepalive_off_connections";
    std::uint64_t total = 0, off = 0, expired = 0, exposed = 0;
    for (const auto &p : audit.processes) {
        ProcessConnections pc;
        pc.pid = p.pid;
        pc.comm = p.comm;
        pc.connections = p.sockets;
        pc.without_keepalive = p.without_keepalive;
        if (p.risk_counts) {
            pc.expired = (*p.risk_counts)[int(Risk::expired)];
            pc.exposed = (*p.risk_counts)[int(Risk::exposed)];
        }
        total += pc.connections;
        off += pc.without_keepalive;
        expired += pc.expired;
        exposed += pc.exposed;
        if (pc.without_keepalive || pc.expired || pc.exposed) c.processes.push_back(pc);
    }
    std::stable_sort(c.processes.begin(), c.processes.end(), [](const auto &a, const auto &b) {
        if (a.expired != b.expired) return a.expired > b.expired;
        return a.without_keepalive > b.without_keepalive;
    });
    constexpr std::size_t kMaxProcesses = 20;
    std::string names;
    for (std::size_t i = 0; i < c.processes.size() && i < 5; ++i)
        names += (i ? ", " : "") + c.processes[i].comm + " (pid " +
                 std::to_string(c.processes[i].pid) + ") " +
                 std::to_string(c.processes[i].without_keepalive);
    if (c.processes.size() > 5) names += ", ...";
    if (c.processes.size() > kMaxProcesses) c.processes.resize(kMaxProcesses);

    c.observed = std::to_string(off) + " of " + std::to_string(total) +
                 " connections have keepalive off" + (names.empty() ? "" : ": " + names);
    Recommendation rec = recommend(f, check_target(bound, ctx));
    const std::string fix =
        "enable SO_KEEPALIVE in these applications: setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, "
        "1) and setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, " +
        std::to_string(rec.time_s) +
        ") (or the language's option, e.g. Java Socket.setKeepAlive(true), Go "
        "net.Dialer{KeepAlive}, libpq keepalives=1)";
    if (bound) {
        c.observed += "; against " + bound_text(*bound) + ": " + std::to_string(expired) +
                      " expired, " + std::to_string(exposed) + " exposed";
        c.expected = "every connection protected: keepalive on with an idle time below " +
                     secs_text(bound->value.count());
        if (expired) {
            c.status = Status::fail;
            c.observed += " (expired: idle longer than the timeout, the next write fails)";
        } else if (exposed) {
            c.status = Status::warn;
        }
    } else {
        c.expected = "keepalive on for long-lived connections that may idle behind a "
                     "firewall or NAT";
        if (off) c.status = Status::warn;
    }
    if (c.status != Status::ok) c.fix = fix;
    return c;
}

Check connections_skipped(const std::string &why) {
    Check c;
    c.id = "keepalive_off_connections";
    c.status = Status::warn;
    c.skipped = true;
    c.observed = "skipped: " + why;
    c.expected = "the current connections and their keepalive state (BPF socket iterator)";
    c.fix = "run as root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): sudo rstwatch doctor";
    return c;
}

int exit_code(const std::vector<Check> &checks) {
    for (const auto &c : checks)
        if (c.status == Status::fail) return 1;
    return 0;
}

} // namespace rstwatch::doctor
