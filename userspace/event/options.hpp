// Parsed command lines: one struct per subcommand, filled by the CLI stage and
// validated there (bad values never reach the BPF loader).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "event/diagnose.hpp"
#include "rstwatch/records.h"

namespace rstwatch {

using std::chrono::milliseconds;

enum class Format { json, text };
enum class Color { auto_, always, never };

struct OutputOptions {
    Format format = Format::json;
    Color color = Color::auto_;
    std::string path; // empty: stdout
    std::uint64_t rotate_size = 0;
    unsigned rotate_keep = 5;
};

struct FilterOptions {
    std::optional<std::uint32_t> pid;
    std::string comm;
    std::optional<std::uint16_t> port;
    std::optional<std::uint32_t> netns;
    std::string cgroup; // as given; resolved to id/level when the command starts
    std::uint64_t cgroup_id = 0;
    int cgroup_level = -1;
    std::optional<milliseconds> min_idle;
    std::optional<Verdict> verdict;
};

// --events kinds.
inline constexpr std::uint32_t kEventSummary = 1u << 8;
inline constexpr std::uint32_t kDefaultEvents = RW_EMIT_RESET | RW_EMIT_TIMEOUT | kEventSummary;

// --metrics-listen: numeric address (no name lookup) and port.
struct ListenAddress {
    std::string host; // "127.0.0.1", "0.0.0.0", "::1", "::"
    std::uint16_t port = 0;
    bool operator==(const ListenAddress &) const = default;
};

struct TraceOptions {
    OutputOptions out;
    FilterOptions filter;
    std::uint32_t events = kDefaultEvents; // RW_EMIT_* | kEventSummary
    std::optional<milliseconds> duration;
    std::optional<std::uint64_t> count;
    std::uint64_t ringbuf_size = 4u << 20; // mapped twice by libbpf: counts 2x in RSS when busy
    std::uint32_t max_sockets = 65536;
    std::optional<milliseconds> middlebox_timeout;
    std::optional<milliseconds> idle_threshold;
    // Agent mode (docs/agent.md).
    std::optional<milliseconds> audit_interval; // periodic audit records, also at start
    std::uint64_t max_events_per_sec = 0;       // 0: unlimited
    std::optional<ListenAddress> metrics_listen;
    unsigned metrics_top_comm = 20; // comm label values in audit gauges; the rest is "other"
    std::string config_path;        // --config, empty: none
    // The arguments these options came from, to parse them again (and re-read
    // the config file) on SIGHUP.
    std::vector<std::string> cli_args;
};

struct AuditOptions {
    OutputOptions out;
    FilterOptions filter;
    std::optional<milliseconds> middlebox_timeout;
};

// rstwatch enforce: one of three actions on a cgroup's keepalive enforcement.
enum class EnforceAction { enforce, remove, status };
enum class EnforceMode { unset_only, always };

struct EnforceOptions {
    OutputOptions out;
    EnforceAction action = EnforceAction::enforce;
    std::string cgroup;     // as given; empty only for --status without --cgroup
    std::string cgroup_dir; // its directory, absolute
    std::uint64_t cgroup_id = 0;
    int cgroup_level = -1;
    std::uint32_t idle_s = 0;                // TCP_KEEPIDLE
    std::optional<std::uint32_t> interval_s; // TCP_KEEPINTVL; unset: the netns default
    std::optional<std::uint32_t> probes;     // TCP_KEEPCNT; unset: the netns default
    EnforceMode mode = EnforceMode::unset_only;
    bool existing = false;
    bool dry_run = false;
    bool pin = false;
    std::optional<milliseconds> middlebox_timeout;
    std::optional<milliseconds> duration;
};

struct DoctorOptions {
    OutputOptions out;
    std::optional<milliseconds> middlebox_timeout;
    std::string root; // a fake / (fixtures): <root>/proc, <root>/etc; empty: the real one
    bool all_netns = false;
};

struct ReportOptions {
    OutputOptions out;               // json or text, to stdout
    std::vector<std::string> inputs; // empty: stdin; "-": stdin
    std::optional<milliseconds> middlebox_timeout;
};

// `rstwatch probe` (userspace/probe/): the search the policy runs.
struct ProbePrecision {
    double fraction = 0.10; // of the lower bound; used when absolute is not set
    std::optional<milliseconds> absolute;
    std::string text = "10%"; // as given
};
struct ProbeSearch {
    milliseconds min{10'000};
    milliseconds max{7'200'000};
    unsigned connections = 8;
    ProbePrecision precision;
    std::vector<milliseconds> ladder; // non-empty: one round with exactly these
    milliseconds interval{1000};      // TCP_KEEPINTVL: the wait after an unanswered probe
};
struct ProbeOptions {
    std::string target; // HOST:PORT as given (resolved when the probe starts)
    ProbeSearch policy;
    milliseconds max_time{3 * 3600 * 1000};
    bool text = false;
};

struct VersionOptions {};

// rstwatch verify: every BPF program of every object, loaded once.
struct VerifyOptions {
    OutputOptions out;
};

using Command = std::variant<TraceOptions, AuditOptions, EnforceOptions, DoctorOptions,
                             ReportOptions, VerifyOptions, ProbeOptions>;

} // namespace rstwatch
