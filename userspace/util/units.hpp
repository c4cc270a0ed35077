// Parsing of the human-sized values the CLI accepts: durations and byte sizes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rstwatch {

// "500ms", "30s", "5m", "1h", "2d"; a bare number is seconds. Rejects negatives,
// empty input, unknown units and values that overflow 64-bit milliseconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "4096", "64K", "4M", "1G" (binary multiples; "KiB"/"MiB"/"GiB" accepted too).
std::optional<std::uint64_t> parse_size(std::string_view text);

// "1h", "5m30s"-style rendering for messages and text output.
std::string format_duration(std::chrono::milliseconds d);

} // namespace rstwatch
