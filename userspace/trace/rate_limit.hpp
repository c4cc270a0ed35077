// --max-events-per-sec: a token bucket in front of the format stage. What it
// suppresses is counted per event type and reported in `lost` records
// (reason "rate_limit") and in session_summary.rate_limited, never silently.
#pragma once

#include <cstdint>

#include "event/event_kind.hpp"

namespace rstwatch {

// `rate` tokens per second, at most `burst` stored. Integer arithmetic in
// nano-tokens, so no drift however long it runs. Times are CLOCK_MONOTONIC ns;
// a time earlier than the last one (records from another CPU) adds nothing.
class TokenBucket {
  public:
    TokenBucket(std::uint64_t rate_per_sec, std::uint64_t burst, std::uint64_t now_ns);
    bool take(std::uint64_t now_ns);
    // New rate and burst; the stored tokens are kept (capped to the new burst).
    void reconfigure(std::uint64_t rate_per_sec, std::uint64_t burst, std::uint64_t now_ns);
    std::uint64_t rate() const { return rate_; }

  private:
    void refill(std::uint64_t now_ns);

    std::uint64_t rate_;
    std::uint64_t burst_;
    unsigned __int128 nano_tokens_; // tokens * 1e9
    std::uint64_t last_ns_;
};

// One bucket shared by every event type (the pipeline downstream cares about
// lines, not kinds); suppression counted per type. Rate 0: unlimited.
class EventRateLimiter {
  public:
    explicit EventRateLimiter(std::uint64_t per_sec = 0, std::uint64_t now_ns = 0);
    bool admit(EventKind kind, std::uint64_t event_ns) {
        if (!rate_) return true;
        if (bucket_.take(event_ns)) return true;
        ++suppressed_[std::size_t(kind)];
        ++suppressed_total_;
        return false;
    }
    // SIGHUP reload. Counts are kept (they are session totals).
    void set_rate(std::uint64_t per_sec, std::uint64_t now_ns);
    std::uint64_t rate() const { return rate_; }
    // Since the session started.
    const EventCounts &suppressed() const { return suppressed_; }
    std::uint64_t suppressed_total() const { return suppressed_total_; }

  private:
    std::uint64_t rate_;
    TokenBucket bucket_;
    EventCounts suppressed_{};
    std::uint64_t suppressed_total_ = 0;
};

} // namespace rstwatch
