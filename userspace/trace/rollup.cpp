#include "trace/rollup.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

namespace rstwatch {

bool is_connection(const rw_snapshot &s) {
    if (s.flags & RW_F_LISTENER) return false;
    switch (s.ep.state) {
    case 1:  // ESTABLISHED
    case 4:  // FIN_WAIT1
    case 5:  // FIN_WAIT2
    case 8:  // CLOSE_WAIT
    case 9:  // LAST_ACK
    case 11: // CLOSING
        return true;
    }
    return false;
}

std::uint32_t options_in_socket(const rw_keepalive &ka) {
    std::uint32_t o = 0;
    if (ka.enabled) o |= RW_OPT_SO_KEEPALIVE;
    if (ka.from_socket & RW_KA_IDLE_SOCKET) o |= RW_OPT_TCP_KEEPIDLE;
    if (ka.from_socket & RW_KA_INTVL_SOCKET) o |= RW_OPT_TCP_KEEPINTVL;
    if (ka.from_socket & RW_KA_PROBES_SOCKET) o |= RW_OPT_TCP_KEEPCNT;
    if (ka.user_timeout_ms) o |= RW_OPT_TCP_USER_TIMEOUT;
    return o;
}

namespace {

bool owner_matches(std::uint32_t pid, const char *comm, const FilterOptions &f) {
    if (f.pid && pid != *f.pid) return false;
    if (!f.comm.empty() && f.comm != comm) return false;
    return true;
}

bool socket_matches(const rw_snapshot &s, const FilterOptions &f) {
    if (!owner_matches(s.owner.pid, s.owner.comm, f)) return false;
    if (f.port && s.ep.local_port != *f.port && s.ep.remote_port != *f.port) return false;
    if (f.netns && s.tm.netns != *f.netns) return false;
    if (f.min_idle && std::int64_t(s.tm.idle_ms) < f.min_idle->count()) return false;
    return true;
}

} // namespace

std::vector<ProcessSummary>
build_process_summaries(const std::vector<std::pair<std::uint32_t, rw_proc_stats>> &stats,
                        const std::vector<rw_snapshot> &open,
                        const std::vector<rw_sock_info> &closing, const FilterOptions &filter) {
    std::map<std::uint32_t, ProcessSummary> rows;
    for (const auto &[pid, st] : stats) {
        if (!owner_matches(pid, st.comm, filter)) continue;
        ProcessSummary &p = rows[pid];
        p.pid = pid;
        p.comm = st.comm;
        p.uid = st.uid;
        p.connections += st.connections_closed;
        p.without_keepalive += st.closed_without_keepalive;
        p.resets_received += st.resets_received;
        p.resets_sent += st.resets_sent;
        p.timeouts += st.timeouts;
        for (unsigned i = 0; i < RW_OPT_COUNT; ++i)
            if (st.opt_set[i]) p.keepalive_options |= 1u << i;
    }
    // A socket held by several fds of one process counts once.
    std::set<std::pair<std::uint32_t, std::uint64_t>> seen;
    for (const auto &s : open) {
        if (!is_connection(s) || !socket_matches(s, filter)) continue;
        if (!seen.insert({s.owner.pid, s.sock_id}).second) continue;
        ProcessSummary &p = rows[s.owner.pid];
        if (p.pid == 0) {
            p.pid = s.owner.pid;
            p.comm = s.owner.comm;
            p.uid = s.owner.uid;
        }
        ++p.connections;
        ++p.open_connections;
        if (!(s.flags & RW_F_KA_EVER)) ++p.without_keepalive;
        p.keepalive_options |= options_in_socket(s.ka);
    }
    for (const auto &c : closing) {
        if (!(c.flags & RW_F_ESTABLISHED) || !c.owner.pid) continue;
        if (!owner_matches(c.owner.pid, c.owner.comm, filter)) continue;
        ProcessSummary &p = rows[c.owner.pid];
        if (p.pid == 0) {
            p.pid = c.owner.pid;
            p.comm = std::string(c.owner.comm, strnlen(c.owner.comm, sizeof c.owner.comm));
            p.uid = c.owner.uid;
        }
        ++p.connections;
        if (!(c.flags & RW_F_KA_EVER)) ++p.without_keepalive;
        p.keepalive_options |= c.opts;
    }
    std::vector<ProcessSummary> out;
    out.reserve(rows.size());
    for (auto &[pid, p] : rows)
        out.push_back(std::move(p));
    std::stable_sort(out.begin(), out.end(), [](const ProcessSummary &a, const ProcessSummary &b) {
        if (a.without_keepalive != b.without_keepalive)
            return a.without_keepalive > b.without_keepalive;
        std::uint64_t fa = a.resets_received + a.resets_sent + a.timeouts;
        std::uint64_t fb = b.resets_received + b.resets_sent + b.timeouts;
        if (fa != fb) return fa > fb;
        return a.connections > b.connections;
    });
    return out;
}

Risk audit_risk(const rw_snapshot &s, std::chrono::milliseconds timeout) {
    const std::int64_t t = timeout.count();
    const bool effective = s.ka.enabled && std::int64_t(s.ka.idle_s) * 1000 < t;
    if (effective) return Risk::protected_;
    if (std::int64_t(s.tm.idle_ms) >= t) return Risk::expired;
    return Risk::exposed;
}

AuditResult build_audit(const std::vector<rw_snapshot> &snap, const FilterOptions &filter,
                        std::optional<std::chrono::milliseconds> middlebox_timeout,
                        std::int64_t ts_ns) {
    AuditResult res;
    std::unordered_map<std::uint64_t, std::set<std::uint32_t>> holders;
    for (const auto &s : snap)
        if (is_connection(s)) holders[s.sock_id].insert(s.owner.pid);

    std::set<std::pair<std::uint32_t, std::uint64_t>> seen;
    std::map<std::uint32_t, AuditProcess> procs;
    for (const auto &s : snap) {
        if (!is_connection(s) || !socket_matches(s, filter)) continue;
        if (!seen.insert({s.owner.pid, s.sock_id}).second) continue;
        std::optional<Risk> risk;
        if (middlebox_timeout) risk = audit_risk(s, *middlebox_timeout);
        res.sockets.push_back(AuditSocket{s, ts_ns, nullptr, holders[s.sock_id].size() > 1, risk});

        AuditProcess &p = procs[s.owner.pid];
        p.ts_ns = ts_ns;
        p.pid = s.owner.pid;
        p.comm = s.owner.comm;
        p.uid = s.owner.uid;
        ++p.sockets;
        if (!(s.flags & RW_F_KA_EVER) && !s.ka.enabled) ++p.without_keepalive;
        p.max_idle_ms = std::max<std::uint64_t>(p.max_idle_ms, s.tm.idle_ms);
        if (risk) {
            if (!p.risk_counts) p.risk_counts = std::array<std::uint64_t, 3>{};
            ++(*p.risk_counts)[int(*risk)];
        }
    }
    for (auto &[pid, p] : procs)
        res.processes.push_back(std::move(p));

    auto risk_rank = [](const std::optional<Risk> &r) { return r ? int(*r) : 3; };
    std::unordered_map<std::uint32_t, std::size_t> rank;
    std::stable_sort(res.processes.begin(), res.processes.end(),
                     [](const AuditProcess &a, const AuditProcess &b) {
                         auto expired = [](const AuditProcess &p) {
                             return p.risk_counts ? (*p.risk_counts)[0] : 0;
                         };
                         if (expired(a) != expired(b)) return expired(a) > expired(b);
                         if (a.without_keepalive != b.without_keepalive)
                             return a.without_keepalive > b.without_keepalive;
                         return a.max_idle_ms > b.max_idle_ms;
                     });
    for (std::size_t i = 0; i < res.processes.size(); ++i)
        rank[res.processes[i].pid] = i;
    // Sockets follow their process; within it, riskiest and idlest first.
    std::stable_sort(res.sockets.begin(), res.sockets.end(),
                     [&](const AuditSocket &a, const AuditSocket &b) {
                         std::size_t ra = rank[a.rec.owner.pid], rb = rank[b.rec.owner.pid];
                         if (ra != rb) return ra < rb;
                         if (risk_rank(a.risk) != risk_rank(b.risk))
                             return risk_rank(a.risk) < risk_rank(b.risk);
                         return a.rec.tm.idle_ms > b.rec.tm.idle_ms;
                     });
    return res;
}

} // namespace rstwatch
