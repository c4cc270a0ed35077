#include "util/histogram.hpp"

#include <algorithm>
#include <cstdio>

namespace rstwatch {

int Log2Histogram::bucket_of(std::uint64_t v) {
    if (v == 0) return 0;
    return std::min(kBuckets - 1, 64 - __builtin_clzll(v));
}

std::string Log2Histogram::render(std::string_view unit, int width) const {
    int first = -1, last = -1;
    std::uint64_t max = 0;
    for (int i = 0; i < kBuckets; ++i) {
        if (!counts_[std::size_t(i)]) continue;
        if (first < 0) first = i;
        last = i;
        max = std::max(max, counts_[std::size_t(i)]);
    }
    if (first < 0) return {};
    std::string out;
    char line[160];
    std::snprintf(line, sizeof(line), "%24s : count    distribution\n", std::string(unit).c_str());
    out += line;
    for (int i = first; i <= last; ++i) {
        std::uint64_t c = counts_[std::size_t(i)];
        int stars = max ? int((c * std::uint64_t(width) + max - 1) / max) : 0;
        std::snprintf(line, sizeof(line), "%10llu -> %-10llu : %-8llu |%-*s|\n",
                      (unsigned long long)low(i), (unsigned long long)high(i),
                      (unsigned long long)c, width, std::string(std::size_t(stars), '*').c_str());
        out += line;
    }
    return out;
}

} // namespace rstwatch
