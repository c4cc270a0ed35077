#include "trace/agent_audit.hpp"

#include <malloc.h>

#include "util/clock.hpp"
#include "trace/tracer.hpp"

namespace rstwatch {

bool write_audit_records(Formatter &fmt, Output &out, CgroupResolver &cgroups, AuditResult &res) {
    for (auto &p : res.processes) {
        p.cgroup = cgroups.of_pid(p.pid);
        fmt.audit_process(out.buf(), p);
        out.event_added(EventKind::audit_process);
    }
    for (auto &s : res.sockets) {
        s.cgroup = cgroups.lookup(s.rec.owner.cgroup_id);
        fmt.audit_socket(out.buf(), s);
        out.event_added(EventKind::audit_socket);
        if (out.buf().size() > (1u << 20) && !out.flush()) return false;
    }
    return !out.closed();
}

std::vector<rw_snapshot> filter_by_cgroup(std::vector<rw_snapshot> snap, const std::string &root,
                                          CgroupResolver &cgroups) {
    const std::string prefix = root == "/" ? "/" : root + "/";
    std::erase_if(snap, [&](const rw_snapshot &s) {
        const CgroupInfo *cg = cgroups.lookup(s.owner.cgroup_id);
        if (!cg) return true;
        return !(root == "/" || cg->path == root || cg->path.rfind(prefix, 0) == 0);
    });
    return snap;
}

PeriodicAudit::PeriodicAudit(std::optional<std::chrono::milliseconds> interval,
                             std::uint64_t now_ns) {
    set_interval(interval, now_ns);
}

void PeriodicAudit::set_interval(std::optional<std::chrono::milliseconds> interval,
                                 std::uint64_t now_ns) {
    interval_ns_ = interval ? std::uint64_t(interval->count()) * 1'000'000 : 0;
    next_ns_ = now_ns + interval_ns_;
}

AuditGauges PeriodicAudit::run(Tracer &tracer, Formatter &fmt, Output &out, CgroupResolver &cgroups,
                               const AuditSettings &settings) {
    const std::uint64_t started = WallClock::mono_now_ns();
    std::vector<rw_snapshot> snap;
    tracer.scan(false, [&snap](const rw_snapshot &s) { snap.push_back(s); });
    return emit(std::move(snap), fmt, out, cgroups, settings, started);
}

AuditGauges PeriodicAudit::emit(std::vector<rw_snapshot> snap, Formatter &fmt, Output &out,
                                CgroupResolver &cgroups, const AuditSettings &settings,
                                std::uint64_t started_ns) {
    const std::int64_t ts = WallClock::real_now_ns();
    if (settings.filter.cgroup_id) {
        const CgroupInfo *root = cgroups.lookup(settings.filter.cgroup_id);
        if (root)
            snap = filter_by_cgroup(std::move(snap), root->path, cgroups);
        else
            snap.clear(); // the cgroup is gone: nothing of it can hold sockets
    }
    AuditResult res = build_audit(snap, settings.filter, settings.middlebox_timeout, ts);
    write_audit_records(fmt, out, cgroups, res);
    out.flush();

    AuditGauges g;
    g.runs = ++runs_;
    g.last_run_unix_s = double(ts) / 1e9;
    g.processes = res.processes.size();
    for (const auto &p : res.processes) {
        g.connections += p.sockets;
        g.without_keepalive += p.without_keepalive;
    }
    g.by_comm = top_comm_gauges(res.processes, settings.top_comm);
    res = {};
    snap = {};
    // An audit of many connections briefly needs megabytes; give them back to
    // the system instead of keeping the agent's RSS at that peak.
    malloc_trim(0);
    const std::uint64_t ended = WallClock::mono_now_ns();
    g.duration_s = double(ended - started_ns) / 1e9;
    if (interval_ns_) next_ns_ = ended + interval_ns_;
    return g;
}

} // namespace rstwatch
