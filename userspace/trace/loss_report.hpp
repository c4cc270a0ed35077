// `lost` records: whenever the kernel failed to queue records (ringbuf_full)
// or the rate limit suppressed events (rate_limit) since the last check, one
// record per reason with the count since the previous one. Checked at least
// once per second while tracing, and at the end.
#pragma once

#include <cstdint>

#include "trace/pipeline.hpp"
#include "trace/rate_limit.hpp"
#include "trace/tracer.hpp"

namespace rstwatch {

class LostReporter {
  public:
    void check(const Counters &kernel, const EventRateLimiter &limiter, Formatter &fmt, Output &out,
               std::int64_t ts_ns);

  private:
    Counters last_kernel_;
    std::uint64_t last_kernel_total_ = 0;
    EventCounts last_suppressed_{};
    std::uint64_t last_suppressed_total_ = 0;
};

} // namespace rstwatch
