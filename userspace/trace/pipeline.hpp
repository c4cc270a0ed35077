// The trace data path after the ring buffer: decode -> enrich -> diagnose ->
// filter -> format -> (buffered) sink. Each stage is its own unit; this class
// only wires them and keeps the session's counts.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event/kernel_facts.hpp"
#include "util/clock.hpp"
#include "event/diagnose.hpp"
#include "util/cgroup_fs.hpp"
#include "event/event_kind.hpp"
#include "output/format.hpp"
#include "output/output.hpp"
#include "trace/filter.hpp"
#include "trace/metrics.hpp"
#include "trace/rate_limit.hpp"
#include "output/sink.hpp"

namespace rstwatch {

struct PipelineConfig {
    DiagnoseConfig dx;
    std::optional<Verdict> verdict;       // userspace filter
    std::uint32_t emit = 0;               // RW_EMIT_*
    std::uint64_t max_events = 0;         // --count; 0 = unlimited
    std::uint64_t max_events_per_sec = 0; // --max-events-per-sec; 0 = unlimited
};

class TracePipeline {
  public:
    TracePipeline(PipelineConfig cfg, Formatter &fmt, Output &out, CgroupResolver &cgroups,
                  const KernelFacts &kernel, const WallClock &clock);

    // One ring-buffer sample. Returns -1 when --count has been reached.
    int on_sample(const void *data, std::size_t size);

    // Received resets waiting for the peer's sent reset: emits those whose wait
    // is over at monotonic time now_ns (all of them with force).
    void flush_pending(std::uint64_t now_ns, bool force);
    // When the oldest pending reset must be decided (0: none pending).
    std::uint64_t pending_deadline() const;

    // SIGHUP: the settings that only the userspace stages use.
    void reconfigure(const DiagnoseConfig &dx, std::optional<Verdict> verdict);
    void set_rate_limit(std::uint64_t per_sec, std::uint64_t now_ns);

    bool done() const { return cfg_.max_events && events_ >= cfg_.max_events; }
    std::uint64_t resets() const { return resets_; }
    std::uint64_t timeouts() const { return timeouts_; }
    std::uint64_t filtered() const { return filter_.dropped(); }
    std::uint64_t malformed() const { return malformed_; }
    const EventRateLimiter &limiter() const { return limiter_; }
    // Resets/timeouts by verdict, keepalive options and userspace filter
    // counts for the metrics (the caller adds the kernel's, the rate
    // limiter's and the output's).
    const TraceCounters &stats() const { return stats_; }

  private:
    // The rate limit, decided before the (costly) format stage.
    bool admit(EventKind kind, std::uint64_t ts_ns) { return limiter_.admit(kind, ts_ns); }
    // The filter stage (--verdict); nullopt for event types without a verdict.
    bool keep(std::optional<Verdict> verdict);
    void on_reset(const rw_reset &r);
    void emit_reset(const rw_reset &r, Origin origin);
    void on_close(const rw_close &c);
    void on_sockopt(const rw_sockopt &s);
    std::string_view reason_name(std::int32_t v) const;
    void maybe_flush();

    PipelineConfig cfg_;
    Formatter &fmt_;
    Output &out_;
    CgroupResolver &cgroups_;
    const KernelFacts &kernel_;
    const WallClock &clock_;
    // Pairs received resets with their peer's sent reset; holds a received
    // reset up to 100 ms for it.
    OriginTracker origins_;
    std::vector<std::pair<rw_reset, Origin>> ready_; // scratch, reused
    std::uint64_t events_ = 0, resets_ = 0, timeouts_ = 0, malformed_ = 0;
    VerdictFilter filter_;
    EventRateLimiter limiter_;
    TraceCounters stats_;
};

} // namespace rstwatch
