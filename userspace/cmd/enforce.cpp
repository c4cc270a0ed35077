// rstwatch enforce: keepalive for a cgroup's connections whose applications
// never enabled it (install, and report every change until stopped), plus
// --status and --remove. Semantics: docs/enforce.md.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/utsname.h>
#include <unistd.h>

#include "bpf/bpf_util.hpp"
#include "bpf/caps.hpp"
#include "cli/cli.hpp"
#include "util/clock.hpp"
#include "cmd/commands.hpp"
#include "enforce/enforce.hpp"
#include "enforce/format.hpp"
#include "util/cgroup_fs.hpp"
#include "util/log.hpp"
#include "output/setup.hpp"
#include "output/output.hpp"
#include "agent/session_loop.hpp"
#include "rstwatch/version.hpp"

namespace rstwatch {

namespace {

void require_capabilities(EnforceAction action) {
    std::string why = enforce_capability_problem(effective_caps(), action);
    if (!why.empty()) throw EnvironmentError(why);
}

// The cgroup as the other events name it: relative to the cgroup v2 root.
std::string relative_cgroup(const std::string &dir) {
    std::string root = cgroup2_mount_point();
    if (root.empty() || dir.rfind(root, 0) != 0) return dir;
    std::string rel = dir.substr(root.size());
    return rel.empty() ? "/" : rel;
}

rw_enforce_config make_config(const EnforceOptions &o) {
    rw_enforce_config c{};
    c.cgroup_id = o.cgroup_id;
    c.cgroup_level = o.cgroup_level;
    c.idle_s = o.idle_s;
    c.interval_s = o.interval_s.value_or(0);
    c.probes = o.probes.value_or(0);
    c.mode = o.mode == EnforceMode::always ? RW_ENF_MODE_ALWAYS : RW_ENF_MODE_UNSET_ONLY;
    c.dry_run = o.dry_run;
    c.pinned = o.pin;
    c.installer_pid = std::uint32_t(getpid());
    c.started_ns = std::uint64_t(WallClock::real_now_ns());
    return c;
}

// lost records: the kernel's count of failed ring-buffer reservations, as a
// record whenever it grew since the last one.
struct LostTally {
    std::uint64_t seen = 0;
    void report(EnforceFormatter &fmt, Output &out, std::uint64_t lost_now) {
        if (lost_now == seen) return;
        fmt.lost(out.buf(), WallClock::real_now_ns(), lost_now - seen, lost_now);
        seen = lost_now;
    }
};

// Reports enforcement until a signal, --duration or a closed output; returns
// why it ended (enforce_stop's reason).
std::string_view run_session(Enforcer &enf, int sigfd, Output &out, EnforceFormatter &fmt,
                             LostTally &lost, const EnforceOptions &o, std::uint64_t t_ready) {
    SessionLoop loop(enf.ring_epoll_fd(), sigfd);
    const std::uint64_t deadline =
        o.duration ? t_ready + std::uint64_t(o.duration->count()) * 1'000'000 : 0;
    std::uint64_t next_tick = t_ready + 1'000'000'000;
    bool running = true;
    std::string_view end_reason = "signal";
    while (running) {
        std::uint64_t now = WallClock::mono_now_ns();
        std::uint64_t wake = next_tick;
        if (deadline && deadline < wake) wake = deadline;
        const SessionLoop::Wake w = loop.wait(SessionLoop::timeout_ms(wake, now));
        if (w.ring) enf.consume();
        for (unsigned i = 0; i < w.reopen; ++i)
            out.sink().reopen();
        if (w.stop) running = false;
        now = WallClock::mono_now_ns();
        if (now >= next_tick) {
            lost.report(fmt, out, enf.counters()[RW_ENF_CNT_LOST]);
            next_tick = now + 1'000'000'000;
        }
        if (deadline && now >= deadline) {
            running = false;
            end_reason = "duration";
        }
        if (!out.flush()) {
            running = false;
            end_reason = "output_closed";
        }
    }
    return end_reason;
}

// The enforce_start record; `kernel` must outlive it (a view).
EnforceStart start_record(const EnforceOptions &o, const EnforceSetup &setup, const Enforcer &enf,
                          std::string_view kernel, std::uint64_t seeded,
                          const std::optional<ExistingResult> &existing, const std::string &pin_dir,
                          std::uint64_t startup_ms) {
    EnforceSettings settings = EnforceSettings::from_config(setup.cfg);
    settings.cgroup = relative_cgroup(o.cgroup_dir);
    EnforceStart start{WallClock::real_now_ns(),
                       RSTWATCH_VERSION,
                       kernel,
                       std::uint32_t(getpid()),
                       settings,
                       enf.programs(),
                       seeded,
                       std::nullopt,
                       o.pin ? pin_dir : std::string(),
                       std::uint32_t(startup_ms),
                       enf.left_out()};
    if (existing)
        start.existing = ExistingSummary{existing->records.size(), existing->namespaces,
                                         std::uint32_t(existing->skipped.size())};
    return start;
}

int run_install(const EnforceOptions &o) {
    const std::uint64_t t_start = WallClock::mono_now_ns();
    UniqueFd sigfd = block_session_signals();
    // Output first: a bad path is a usage error and must not leave programs behind.
    Output out(make_sink(o.out));
    auto fmt = make_enforce_formatter(o.out.format, host_name());
    require_capabilities(o.action);
    require_btf();
    utsname uts{};
    uname(&uts);

    const std::string pin_dir = enforce_pin_dir(o.cgroup_id);
    if (o.pin) ensure_bpffs();
    // Two enforcements on one cgroup would both act on every connection.
    if (!pinned_links(pin_dir).empty())
        throw EnvironmentError("cgroup " + o.cgroup + " already has a pinned enforcement (" +
                               pin_dir + "); remove it first: rstwatch enforce --remove --cgroup " +
                               o.cgroup);

    EnforceSetup setup;
    setup.cfg = make_config(o);
    setup.existing = o.existing;
    Enforcer enf(setup, hz_fallback());
    enf.attach(o.cgroup_dir);
    const auto namespaces = cgroup_network_namespaces(o.cgroup_dir);
    const std::uint64_t seeded = enf.seed_owners(namespaces);
    if (o.pin) enf.pin(pin_dir);

    std::optional<ExistingResult> existing;
    if (o.existing) {
        existing = enf.apply_existing(namespaces);
        for (const auto &why : existing->skipped)
            log_warn("--existing: skipped a network namespace of the cgroup: " + why);
    }

    CgroupResolver cgroups;
    WallClock clock;
    enf.open_ring_buffer([&](const rw_enforce &r) {
        fmt->enforced(out.buf(), EnforcedEvent{r, clock.to_realtime_ns(r.hdr.ts_ns),
                                               cgroups.lookup(r.owner.cgroup_id)});
        out.event_added();
    });

    const std::uint64_t t_ready = WallClock::mono_now_ns();
    EnforceStart start = start_record(o, setup, enf, uts.release, seeded, existing, pin_dir,
                                      (t_ready - t_start) / 1'000'000);
    fmt->start(out.buf(), start);
    if (existing) {
        for (const auto &r : existing->records) {
            fmt->enforced(out.buf(), EnforcedEvent{r, clock.to_realtime_ns(r.hdr.ts_ns),
                                                   cgroups.lookup(r.owner.cgroup_id)});
            out.event_added();
        }
    }
    out.flush();
    enf.cache_core_btf();
    if (o.out.format == Format::text || !o.out.path.empty())
        log_info(o.pin && !o.duration ? "enforcement pinned; rstwatch enforce --remove --cgroup " +
                                            o.cgroup + " removes it"
                                      : std::string("enforcing keepalive; Ctrl-C to stop"));

    std::string_view end_reason = "installed";
    LostTally lost;
    // With --pin and no --duration the job is done: the pins keep enforcing.
    if (!o.pin || o.duration)
        end_reason = run_session(enf, sigfd.get(), out, *fmt, lost, o, t_ready);

    // Stop changing sockets (or, pinned, stop reporting), then drain what the
    // kernel already queued.
    if (o.pin)
        enf.stop_reporting();
    else
        enf.detach();
    if (!out.closed()) enf.consume();
    EnforceCounters c = enf.counters();
    lost.report(*fmt, out, c[RW_ENF_CNT_LOST]);
    fmt->stop(out.buf(), EnforceStop{WallClock::real_now_ns(),
                                     (WallClock::mono_now_ns() - t_ready) / 1'000'000, end_reason,
                                     c, !o.pin, o.pin ? pin_dir : std::string()});
    out.flush();
    return 0;
}

int run_remove(const EnforceOptions &o) {
    signal(SIGPIPE, SIG_IGN);
    Output out(make_sink(o.out));
    auto fmt = make_enforce_formatter(o.out.format, host_name());
    require_capabilities(o.action);
    RemoveResult res = remove_pinned(o.cgroup_id);
    if (res.removed.empty())
        log_warn("no pinned enforcement on cgroup " + o.cgroup + " (nothing at " + res.pin_dir +
                 ")");
    fmt->removed(out.buf(), EnforceRemoved{WallClock::real_now_ns(), relative_cgroup(o.cgroup_dir),
                                           o.cgroup_id, res});
    out.event_added();
    out.flush();
    return 0;
}

int run_status(const EnforceOptions &o) {
    signal(SIGPIPE, SIG_IGN);
    Output out(make_sink(o.out));
    auto fmt = make_enforce_formatter(o.out.format, host_name());
    require_capabilities(o.action);
    const auto active = list_enforcements();
    CgroupResolver cgroups;
    const std::string filter = o.cgroup_dir.empty() ? "" : relative_cgroup(o.cgroup_dir);
    std::size_t shown = 0;
    for (const auto &a : active) {
        const CgroupInfo *cg = cgroups.lookup(a.cgroup_id);
        // --cgroup: that cgroup and its descendants.
        if (!filter.empty() && filter != "/") {
            if (!cg) continue;
            const std::string &p = cg->path;
            if (p != filter && p.rfind(filter + "/", 0) != 0) continue;
        }
        std::optional<EnforceSettings> settings;
        if (a.config) {
            settings = EnforceSettings::from_config(*a.config);
            settings->cgroup_id = a.cgroup_id;
            settings->cgroup = cg ? cg->path : std::string();
        }
        bool running = a.config && process_running(a.config->installer_pid);
        fmt->status(out.buf(), EnforceStatus{WallClock::real_now_ns(), a, settings, running});
        out.event_added();
        ++shown;
    }
    if (!shown && o.out.format == Format::text) out.buf() += "no active keepalive enforcement\n";
    out.flush();
    return 0;
}

} // namespace

int run_enforce(const EnforceOptions &given) {
    EnforceOptions o = given;
    resolve_cgroup_option(o); // before anything is opened or loaded
    switch (o.action) {
    case EnforceAction::status:
        return run_status(o);
    case EnforceAction::remove:
        return run_remove(o);
    case EnforceAction::enforce:
        break;
    }
    return run_install(o);
}

} // namespace rstwatch
