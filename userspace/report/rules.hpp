// rstwatch report, stage 4: what the aggregated deaths mean. Pure functions,
// the rules spelled out in docs/report.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/middlebox.hpp"
#include "report/aggregate.hpp"

namespace rstwatch {

// "Most" in "most middlebox-caused deaths above one idle value".
inline constexpr double kClusterFraction = 0.8;
// Probes recommended before a silent peer is declared dead.
inline constexpr std::uint32_t kAdvisedProbes = 5;

// The clustering rule over middlebox-caused deaths with a known idle_ms:
// they cluster when at least kClusterFraction of them were idle for at least
// kClusterFloorMs. The bound is then the smallest idle among those: the
// middlebox evicted a flow that had been silent that long, so its idle timeout
// is at most that.
struct ClusterResult {
    std::uint64_t deaths = 0;      // middlebox-caused, idle known
    std::uint64_t at_or_above = 0; // idle >= kClusterFloorMs
    std::uint64_t below_floor = 0;
    double fraction = 0; // at_or_above / deaths
    bool clustered = false;
    std::uint64_t bound_ms = 0; // when at_or_above > 0
};
ClusterResult evaluate_cluster(const MiddleboxDeaths &mb);

struct KeepaliveAdvice {
    std::uint32_t idle_s = 0, interval_s = 0, probes = kAdvisedProbes;
    std::string basis; // one sentence: how idle_s was chosen
};

// Keepalive idle comfortably below the middlebox timeout:
//  - a configured timeout (--middlebox-timeout) no larger than the bound:
//    80 % of it (it is known exactly; the rest covers timer slack);
//  - otherwise half the inferred bound (the bound overestimates the timeout
//    by however long the flow stayed silent after its eviction), and at most
//    80 % of the shortest named preset the bound cannot rule out;
//  - interval a tenth of the idle, and idle + interval (a lost first probe's
//    retry) below 90 % of the timeout used; whole seconds, at least 1 s.
KeepaliveAdvice recommend_keepalive(std::uint64_t bound_ms,
                                    std::optional<std::chrono::milliseconds> configured);

struct FixCommand {
    std::string what;
    std::string command;
};

std::vector<FixCommand> sysctl_commands(const KeepaliveAdvice &a);
// C calls that give one socket the advised keepalive.
std::string setsockopt_snippet(const KeepaliveAdvice &a);
// `rstwatch enforce` for one process's cgroup; without a known cgroup path it
// reads the path from /proc/PID/cgroup on the host where the process runs.
std::string enforce_command(std::string_view cgroup, std::uint32_t pid, const KeepaliveAdvice &a);

enum class FindingKind : std::uint8_t {
    middlebox_idle_timeout, // deaths cluster: bound, advice, fix
    deaths_not_clustered,   // middlebox deaths, but not of idle connections
    one_side_keepalive,     // both ends seen, keepalive on one only
};
std::string_view to_string(FindingKind k);

struct AffectedProcess {
    std::uint32_t proc = 0;
    std::string_view keepalive; // "disabled", "too_slow", "unknown"
    std::uint64_t deaths = 0;
    std::string fix_what, fix_command;
};

struct Finding {
    FindingKind kind{};
    std::string summary;
    // middlebox_idle_timeout, deaths_not_clustered
    ClusterResult cluster;
    std::uint64_t inferred = 0; // deaths whose middlebox origin was inferred across hosts
    std::optional<std::uint64_t> configured_ms;
    std::optional<bool> consistent_with_configured;
    std::vector<MiddleboxPreset> presets;
    KeepaliveAdvice advice;
    std::vector<std::uint32_t> hosts; // hosts with middlebox-caused deaths
    std::vector<AffectedProcess> affected;
    std::uint64_t affected_omitted = 0;
    std::vector<FixCommand> commands;
    // one_side_keepalive
    std::uint64_t pairs = 0;
    std::vector<std::size_t> examples; // indices into ReportData::pairs
};

inline constexpr std::size_t kMaxAffected = 20;
inline constexpr std::size_t kMaxPairExamples = 5;

std::vector<Finding> build_findings(const ReportData &d,
                                    std::optional<std::chrono::milliseconds> configured);

// "5.2s", "350s", "20m", "4d"-style text for messages.
std::string human_ms(std::uint64_t ms);

} // namespace rstwatch
