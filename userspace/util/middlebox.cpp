#include "util/middlebox.hpp"

#include <algorithm>

#include "util/units.hpp"

namespace rstwatch {

const std::vector<MiddleboxPreset> &middlebox_presets() {
    using std::chrono::seconds;
    static const std::vector<MiddleboxPreset> presets = {
        {"aws-nat-gateway", seconds(350), "answers with RST"},
        {"azure-load-balancer", seconds(240), "drops silently unless \"TCP reset on idle\" is on"},
        // Microsoft's NAT Gateway overview: an RST for any flow it no longer
        // knows, including one whose idle timeout was reached.
        {"azure-nat-gateway", seconds(240), "answers with RST"},
        {"gcp-cloud-nat", seconds(1200), "drops silently"},
        {"kube-proxy", seconds(86400), "conntrack entry expires; next packet is not NATed"},
        {"linux-conntrack", seconds(432000),
         "conntrack entry expires (RST or drop per firewall rules)"},
    };
    return presets;
}

std::optional<std::chrono::milliseconds> parse_middlebox_timeout(std::string_view text) {
    for (const auto &p : middlebox_presets())
        if (p.name == text) return std::chrono::duration_cast<std::chrono::milliseconds>(p.timeout);
    auto d = parse_duration(text);
    if (!d || d->count() == 0) return std::nullopt;
    return d;
}

std::vector<MiddleboxPreset> presets_consistent_with(std::chrono::milliseconds upper_bound) {
    std::vector<MiddleboxPreset> out;
    for (const auto &p : middlebox_presets())
        if (std::chrono::duration_cast<std::chrono::milliseconds>(p.timeout) <= upper_bound)
            out.push_back(p);
    // The largest timeout still under the bound explains the data best.
    std::sort(out.begin(), out.end(),
              [](const auto &a, const auto &b) { return a.timeout > b.timeout; });
    return out;
}

} // namespace rstwatch
