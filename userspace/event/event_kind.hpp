// Event types as counted by the rate limiter, the metrics and `lost` records:
// the JSON "event" names of the lines a trace session emits per occurrence.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rstwatch {

enum class EventKind : unsigned char {
    tcp_reset,
    tcp_timeout,
    connection_closed,
    keepalive_set,
    audit_socket,
    audit_process,
    other, // anything an older caller adds without saying what it is
};

inline constexpr std::size_t kEventKinds = 7;

inline constexpr std::array<std::string_view, kEventKinds> kEventKindNames = {
    "tcp_reset",     "tcp_timeout", "connection_closed", "keepalive_set", "audit_socket",
    "audit_process", "other"};

inline std::string_view to_string(EventKind k) {
    return kEventKindNames[std::size_t(k)];
}

// Per-kind counters.
using EventCounts = std::array<std::uint64_t, kEventKinds>;

} // namespace rstwatch
