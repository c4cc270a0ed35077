// Converts BPF timestamps (CLOCK_MONOTONIC ns) to wall-clock RFC 3339 text.
#pragma once

#include <cstdint>
#include <string>

namespace rstwatch {

class WallClock {
  public:
    WallClock();
    // Re-reads the offset between the two clocks (NTP may have stepped).
    void resync();
    // CLOCK_REALTIME ns for a CLOCK_MONOTONIC ns value.
    std::int64_t to_realtime_ns(std::uint64_t mono_ns) const {
        // Saturating: an impossible timestamp must not overflow (undefined behaviour).
        std::int64_t r;
        if (mono_ns > std::uint64_t(INT64_MAX) ||
            __builtin_add_overflow(std::int64_t(mono_ns), offset_ns_, &r))
            return INT64_MAX;
        return r;
    }
    static std::uint64_t mono_now_ns();
    static std::int64_t real_now_ns();

  private:
    std::int64_t offset_ns_ = 0;
};

// "2026-11-24T20:46:01.123456789Z". Appends to out; caches the formatted second.
class Rfc3339 {
  public:
    void append(std::string &out, std::int64_t realtime_ns);

  private:
    std::int64_t cached_sec_ = -1;
    char cached_[24] = {};
};

} // namespace rstwatch
