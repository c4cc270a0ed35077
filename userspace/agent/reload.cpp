#include "agent/reload.hpp"

namespace rstwatch {

// A new TraceOptions field must be classified in plan_reload (applied on
// SIGHUP, or named as needing a restart); this catches an unclassified one.
static_assert(sizeof(TraceOptions) == 408,
              "TraceOptions changed: classify the new field in plan_reload()");

namespace {

std::string join(const std::vector<std::string> &v) {
    std::string s;
    for (const auto &x : v)
        s += (s.empty() ? "" : ", ") + x;
    return s;
}

} // namespace

ReloadPlan plan_reload(const TraceOptions &running, const TraceOptions &loaded) {
    ReloadPlan p{running, {}, {}};
    auto safe = [&](const char *name, auto member) {
        if (running.*member == loaded.*member) return;
        p.next.*member = loaded.*member;
        p.applied.emplace_back(name);
    };
    auto restart = [&](const char *name, bool changed) {
        if (changed) p.need_restart.emplace_back(name);
    };

    // Userspace only: applied.
    if (running.filter.verdict != loaded.filter.verdict) {
        p.next.filter.verdict = loaded.filter.verdict;
        p.applied.emplace_back("verdict");
    }
    safe("middlebox-timeout", &TraceOptions::middlebox_timeout);
    safe("idle-threshold", &TraceOptions::idle_threshold);
    safe("audit-interval", &TraceOptions::audit_interval);
    safe("max-events-per-sec", &TraceOptions::max_events_per_sec);
    safe("metrics-top-comm", &TraceOptions::metrics_top_comm);

    // Kernel-side filters and event kinds are constants of the loaded BPF
    // programs; the ring buffer and socket map are sized at load; the output,
    // the listener and the stop conditions are set up once.
    const FilterOptions &a = running.filter, &b = loaded.filter;
    restart("events", running.events != loaded.events);
    restart("pid", a.pid != b.pid);
    restart("comm", a.comm != b.comm);
    restart("port", a.port != b.port);
    restart("netns", a.netns != b.netns);
    restart("cgroup", a.cgroup_id != b.cgroup_id || a.cgroup_level != b.cgroup_level);
    restart("min-idle", a.min_idle != b.min_idle);
    restart("ringbuf-size", running.ringbuf_size != loaded.ringbuf_size);
    restart("max-sockets", running.max_sockets != loaded.max_sockets);
    restart("format", running.out.format != loaded.out.format);
    restart("color", running.out.color != loaded.out.color);
    restart("output", running.out.path != loaded.out.path);
    restart("rotate-size", running.out.rotate_size != loaded.out.rotate_size);
    restart("rotate-keep", running.out.rotate_keep != loaded.out.rotate_keep);
    restart("metrics-listen", running.metrics_listen != loaded.metrics_listen);
    restart("duration", running.duration != loaded.duration);
    restart("count", running.count != loaded.count);
    return p;
}

std::string describe(const ReloadPlan &p, const std::string &path) {
    std::string s = "SIGHUP: reloaded " + path + ": ";
    s += p.applied.empty() ? "no change to apply" : "applied " + join(p.applied);
    if (!p.need_restart.empty())
        s += "; changed but NOT applied, they need a restart (running values kept): " +
             join(p.need_restart);
    return s;
}

} // namespace rstwatch
