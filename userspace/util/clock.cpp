#include "util/clock.hpp"

#include <ctime>

namespace rstwatch {

namespace {
std::int64_t ns_of(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
} // namespace

WallClock::WallClock() {
    resync();
}

void WallClock::resync() {
    // Bracket the realtime read with two monotonic reads to halve the error.
    std::int64_t m1 = ns_of(CLOCK_MONOTONIC);
    std::int64_t r = ns_of(CLOCK_REALTIME);
    std::int64_t m2 = ns_of(CLOCK_MONOTONIC);
    offset_ns_ = r - (m1 + (m2 - m1) / 2);
}

std::uint64_t WallClock::mono_now_ns() {
    return std::uint64_t(ns_of(CLOCK_MONOTONIC));
}
std::int64_t WallClock::real_now_ns() {
    return ns_of(CLOCK_REALTIME);
}

void Rfc3339::append(std::string &out, std::int64_t realtime_ns) {
    std::int64_t sec = realtime_ns / 1'000'000'000;
    std::int64_t frac = realtime_ns % 1'000'000'000;
    if (frac < 0) {
        frac += 1'000'000'000;
        --sec;
    }
    if (sec != cached_sec_) {
        time_t t = time_t(sec);
        tm parts{};
        gmtime_r(&t, &parts);
        strftime(cached_, sizeof(cached_), "%Y-%m-%dT%H:%M:%S", &parts);
        cached_sec_ = sec;
    }
    out.append(cached_);
    char digits[11] = {'.', '0', '0', '0', '0', '0', '0', '0', '0', '0', 'Z'};
    for (int i = 9; i >= 1 && frac; --i) {
        digits[i] = char('0' + frac % 10);
        frac /= 10;
    }
    out.append(digits, sizeof(digits));
}

} // namespace rstwatch
