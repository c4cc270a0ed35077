// The audit as part of a trace session (--audit-interval): the same
// audit_process / audit_socket records as `rstwatch audit`, from the socket
// iterator the session already loaded, at start and then periodically; each
// run also refreshes the metrics' audit gauges.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "util/cgroup_fs.hpp"
#include "trace/metrics.hpp"
#include "event/options.hpp"
#include "trace/pipeline.hpp"
#include "trace/rollup.hpp"

namespace rstwatch {

class Tracer;

// Formats an audit's records into `out` (processes first, then sockets),
// flushing as the buffer grows. Returns false once the output is closed.
bool write_audit_records(Formatter &fmt, Output &out, CgroupResolver &cgroups, AuditResult &res);

// Keeps the snapshots whose socket belongs to the cgroup `root` (a path as
// CgroupInfo holds it, "/a/b") or one of its descendants; the one trace filter
// build_audit cannot apply, since it needs cgroup paths.
std::vector<rw_snapshot> filter_by_cgroup(std::vector<rw_snapshot> snap, const std::string &root,
                                          CgroupResolver &cgroups);

struct AuditSettings {
    FilterOptions filter;
    std::optional<std::chrono::milliseconds> middlebox_timeout;
    unsigned top_comm = 20;
};

class PeriodicAudit {
  public:
    PeriodicAudit(std::optional<std::chrono::milliseconds> interval, std::uint64_t now_ns);
    bool enabled() const { return interval_ns_ != 0; }
    bool due(std::uint64_t now_ns) const { return enabled() && now_ns >= next_ns_; }
    // Monotonic time of the next run; 0 when disabled.
    std::uint64_t next_ns() const { return enabled() ? next_ns_ : 0; }
    // SIGHUP: a new interval counts from now.
    void set_interval(std::optional<std::chrono::milliseconds> interval, std::uint64_t now_ns);

    // One audit: iterator, records into `out`, gauges for the metrics. The
    // next run is scheduled one interval after this one ends, so a slow audit
    // cannot pile up behind itself.
    AuditGauges run(Tracer &tracer, Formatter &fmt, Output &out, CgroupResolver &cgroups,
                    const AuditSettings &settings);
    // The same from snapshots already taken (the start-up scan that seeds
    // owners collects them in the same pass).
    AuditGauges emit(std::vector<rw_snapshot> snap, Formatter &fmt, Output &out,
                     CgroupResolver &cgroups, const AuditSettings &settings,
                     std::uint64_t started_ns);

  private:
    std::uint64_t interval_ns_ = 0;
    std::uint64_t next_ns_ = 0;
    std::uint64_t runs_ = 0;
};

} // namespace rstwatch
