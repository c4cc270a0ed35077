// Value parsers of the CLI stage: each takes a flag's text as typed and returns
// the validated value, or throws UsageError naming the flag, the value and what
// was expected (one line, terminal-safe). Used by cli.cpp and flags.cpp only.
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "event/options.hpp"
#include "util/error.hpp"

namespace rstwatch {

using std::chrono::milliseconds;

// A value as the user typed it, quoted in a one-line message: control
// characters (a newline, an escape sequence) are shown as \xNN.
std::string shown(std::string_view v);

[[noreturn]] inline void bad(const std::string &flag, const std::string &value,
                             const std::string &expected) {
    throw_bad_value(flag, value, expected);
}

template <class T>
T parse_uint(const std::string &flag, const std::string &v, T min, T max, const char *what) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < min || n > max)
        bad(flag, v,
            std::string(what) + " (" + std::to_string(min) + ".." + std::to_string(max) + ")");
    return T(n);
}

// Upper bounds keep every later conversion (to ns, to the kernel's u32 ms, x9/10
// for the default idle threshold) far from overflow.
struct DurationLimit {
    milliseconds max;
    const char *label;
};
inline constexpr DurationLimit kMaxDuration{std::chrono::hours(24 * 365), "365d"};
inline constexpr DurationLimit kMaxIdle{std::chrono::hours(24 * 49),
                                        "49d"}; // kernel filter: u32 ms

milliseconds parse_dur(const std::string &flag, const std::string &v, bool allow_zero = false,
                       DurationLimit limit = kMaxDuration);
milliseconds parse_middlebox(const std::string &flag, const std::string &v);
// --output must be a file rstwatch can append to, checked now so that a bad
// path never gets as far as loading BPF. Probes without leaving a file behind.
void check_output_path(const std::string &path);
// PORT (loopback) or ADDR:PORT with a numeric IPv4 address or [IPv6]. No name
// lookup: what the agent exposes must be exactly what the flag says.
ListenAddress parse_listen(const std::string &flag, const std::string &v);
// A whole number of seconds in the kernel's range for a TCP_KEEP* option.
std::uint32_t parse_keepalive_seconds(const std::string &flag, const std::string &v,
                                      const char *option);

} // namespace rstwatch
