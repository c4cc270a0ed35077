// rstwatch verify: loads every BPF program of every object into the running
// kernel, in each configuration a command uses, and says which ones the kernel
// refuses and what that costs. The check behind the kernel matrix, and the
// first thing to run after a kernel update.
#include <csignal>
#include <iostream>
#include <sys/utsname.h>

#include "util/clock.hpp"
#include "cmd/commands.hpp"
#include "enforce/enforce.hpp"
#include "util/cgroup_fs.hpp"
#include "trace/tracer.hpp"
#include "output/verify_format.hpp"

namespace rstwatch {

int run_verify(const VerifyOptions &o) {
    signal(SIGPIPE, SIG_IGN);
    std::vector<VerifyRow> rows;
    const unsigned hz = hz_fallback();
    {
        // trace with the cgroup/setsockopt hook (the default) ...
        TracerConfig tc;
        tc.load_only = true;
        tc.command = "rstwatch verify";
        merge_statuses(rows, "trace", Tracer(tc, hz).program_statuses());
        // ... and with the syscall tracepoints (--events keepalive).
        tc.emit |= RW_EMIT_KEEPALIVE;
        merge_statuses(rows, "trace", Tracer(tc, hz).program_statuses());
    }
    // enforce in both modes, with --existing: the mode changes what the
    // verifier sees of the shared code.
    for (auto mode : {RW_ENF_MODE_UNSET_ONLY, RW_ENF_MODE_ALWAYS}) {
        EnforceSetup es;
        es.cfg.mode = mode;
        // Values the verifier cannot prune: the configuration is read-only data,
        // so a cgroup test that always fails (level -1) or a zero interval would
        // hide code from it (5.10 then "loaded" a program enforce cannot load).
        es.cfg.idle_s = 60;
        es.cfg.interval_s = 10;
        es.cfg.probes = 3;
        es.cfg.cgroup_id = 1;
        es.cfg.cgroup_level = 0;
        es.existing = true;
        es.verify = true;
        merge_statuses(rows, "enforce", Enforcer(es, hz).program_statuses());
    }
    utsname uts{};
    uname(&uts);
    std::string out;
    format_verify(out, rows, o.out.format, host_name(), uts.release, WallClock::real_now_ns());
    std::cout << out << std::flush;
    return count_statuses(rows).failed ? 1 : 0;
}

} // namespace rstwatch
