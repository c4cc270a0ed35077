// rstwatch audit: every current TCP connection of every process, with its
// keepalive state, from the kernel's own tables (BPF socket iterator).
#include <csignal>

#include "trace/agent_audit.hpp"
#include "util/clock.hpp"
#include "cmd/commands.hpp"
#include "output/setup.hpp"
#include "trace/pipeline.hpp"
#include "trace/rollup.hpp"
#include "trace/tracer.hpp"

namespace rstwatch {

int run_audit(const AuditOptions &o) {
    signal(SIGPIPE, SIG_IGN);
    auto fmt = make_formatter(o.out);
    Output out(make_sink(o.out));
    TracerConfig tc;
    tc.attach = false;
    tc.command = "rstwatch audit";
    Tracer tracer(tc, hz_fallback());

    std::vector<rw_snapshot> snap;
    tracer.scan(false, [&snap](const rw_snapshot &s) { snap.push_back(s); });

    const std::int64_t ts = WallClock::real_now_ns();
    CgroupResolver cgroups;
    AuditResult res = build_audit(snap, o.filter, o.middlebox_timeout, ts);
    if (!write_audit_records(*fmt, out, cgroups, res)) return 0;
    out.flush();
    return 0;
}

} // namespace rstwatch
