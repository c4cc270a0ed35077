#include "trace/rate_limit.hpp"

#include <algorithm>

namespace rstwatch {

namespace {
constexpr std::uint64_t kNano = 1'000'000'000;
}

TokenBucket::TokenBucket(std::uint64_t rate_per_sec, std::uint64_t burst, std::uint64_t now_ns)
    : rate_(rate_per_sec), burst_(std::max<std::uint64_t>(burst, 1)),
      nano_tokens_((unsigned __int128)burst_ * kNano), last_ns_(now_ns) {}

void TokenBucket::refill(std::uint64_t now_ns) {
    if (now_ns <= last_ns_) return;
    const unsigned __int128 cap = (unsigned __int128)burst_ * kNano;
    // elapsed (ns) * rate (tokens/s) = nano-tokens; 128 bits cannot overflow
    // for any 64-bit elapsed time and rate.
    nano_tokens_ += (unsigned __int128)(now_ns - last_ns_) * rate_;
    if (nano_tokens_ > cap) nano_tokens_ = cap;
    last_ns_ = now_ns;
}

bool TokenBucket::take(std::uint64_t now_ns) {
    refill(now_ns);
    if (nano_tokens_ < kNano) return false;
    nano_tokens_ -= kNano;
    return true;
}

void TokenBucket::reconfigure(std::uint64_t rate_per_sec, std::uint64_t burst,
                              std::uint64_t now_ns) {
    refill(now_ns);
    rate_ = rate_per_sec;
    burst_ = std::max<std::uint64_t>(burst, 1);
    const unsigned __int128 cap = (unsigned __int128)burst_ * kNano;
    if (nano_tokens_ > cap) nano_tokens_ = cap;
}

EventRateLimiter::EventRateLimiter(std::uint64_t per_sec, std::uint64_t now_ns)
    : rate_(per_sec), bucket_(per_sec, per_sec, now_ns) {}

void EventRateLimiter::set_rate(std::uint64_t per_sec, std::uint64_t now_ns) {
    if (per_sec && !rate_)
        bucket_ = TokenBucket(per_sec, per_sec, now_ns); // from unlimited: a full second
    else if (per_sec)
        bucket_.reconfigure(per_sec, per_sec, now_ns);
    rate_ = per_sec;
}

} // namespace rstwatch
