// rstwatch audit: every current TCP connection of every process, with its
// keepalive state, from the kernel's own tables (BPF socket iterator).
#include <csignal>

#include "rstwatch/clock.hpp"
#include "rstwatch/commands.hpp"
#include "rstwatch/output_setup.hpp"
#include "rstwatch/pipeline.hpp"
#include "rstwatch/summary.hpp"
#include "rstwatch/tracer.hpp"

namespace rstwatch {

int run_audit(const AuditOptions &o) {
    signal(SIGPIPE, SIG_IGN);
    Output out(make_formatter(o.out), make_sink(o.out));
    TracerConfig tc;
    tc.attach = false;
    tc.command = "rstwatch audit";
    Tracer tracer(tc, hz_fallback());

    std::vector<rw_snapshot> snap;
    tracer.scan(false, [&snap](const rw_snapshot &s) { snap.push_back(s); });

    const std::int64_t ts = WallClock::real_now_ns();
    CgroupResolver cgroups;
    AuditResult res = build_audit(snap, o.filter, o.middlebox_timeout, ts);
    for (auto &p : res.processes) {
        p.cgroup = cgroups.of_pid(p.pid);
        out.fmt().audit_process(out.buf(), p);
        out.event_added();
    }
    for (auto &s : res.sockets) {
        s.cgroup = cgroups.lookup(s.rec.owner.cgroup_id);
        out.fmt().audit_socket(out.buf(), s);
        out.event_added();
        if (out.buf().size() > (1u << 20) && !out.flush()) return 0;
    }
    out.flush();
    return 0;
}

} // namespace rstwatch
