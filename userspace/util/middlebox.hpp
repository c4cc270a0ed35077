// Named idle timeouts of common middleboxes, accepted wherever a
// --middlebox-timeout is (sources in docs/middleboxes.md).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rstwatch {

struct MiddleboxPreset {
    std::string_view name;
    std::chrono::seconds timeout;
    std::string_view behaviour; // what it does with a packet for an expired flow
};

const std::vector<MiddleboxPreset> &middlebox_presets();

// A duration ("350s", "4m") or a preset name ("aws-nat-gateway").
std::optional<std::chrono::milliseconds> parse_middlebox_timeout(std::string_view text);

// Presets whose timeout is <= upper_bound (a bound inferred from observed
// deaths), most specific first.
std::vector<MiddleboxPreset> presets_consistent_with(std::chrono::milliseconds upper_bound);

} // namespace rstwatch
