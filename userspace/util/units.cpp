#include "util/units.hpp"

#include <charconv>
#include <limits>

namespace rstwatch {

namespace {

std::optional<std::uint64_t> parse_number(std::string_view digits) {
    std::uint64_t v = 0;
    if (digits.empty()) return std::nullopt;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
    return v;
}

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
    if (b != 0 && a > std::numeric_limits<std::int64_t>::max() / b) return std::nullopt;
    return a * b;
}

std::pair<std::string_view, std::string_view> split_unit(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9')
        ++i;
    return {text.substr(0, i), text.substr(i)};
}

} // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto [digits, unit] = split_unit(text);
    auto n = parse_number(digits);
    if (!n) return std::nullopt;
    std::uint64_t scale;
    if (unit.empty() || unit == "s")
        scale = 1000;
    else if (unit == "ms")
        scale = 1;
    else if (unit == "m" || unit == "min")
        scale = 60'000;
    else if (unit == "h")
        scale = 3'600'000;
    else if (unit == "d")
        scale = 86'400'000;
    else
        return std::nullopt;
    auto ms = checked_mul(*n, scale);
    if (!ms) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(*ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    auto [digits, unit] = split_unit(text);
    auto n = parse_number(digits);
    if (!n) return std::nullopt;
    std::uint64_t scale;
    if (unit.empty() || unit == "B")
        scale = 1;
    else if (unit == "K" || unit == "KiB" || unit == "k")
        scale = 1ull << 10;
    else if (unit == "M" || unit == "MiB")
        scale = 1ull << 20;
    else if (unit == "G" || unit == "GiB")
        scale = 1ull << 30;
    else
        return std::nullopt;
    return checked_mul(*n, scale);
}

std::string format_duration(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms % 1000) return std::to_string(ms) + "ms";
    auto s = ms / 1000;
    if (s % 60 || s < 60) return std::to_string(s) + "s";
    if (s % 3600 || s < 3600) return std::to_string(s / 60) + "m";
    return std::to_string(s / 3600) + "h";
}

} // namespace rstwatch
