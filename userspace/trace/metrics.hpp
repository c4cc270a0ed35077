// Prometheus metrics of a trace session. The event loop owns the counts and
// publishes copies into a MetricsRegistry (a mutex held for a copy of a few
// hundred bytes); the HTTP threads only read the registry and render the text
// exposition format outside the lock, so a scrape never stalls event processing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "event/diagnose.hpp"
#include "event/event_kind.hpp"
#include "event/events.hpp"

namespace rstwatch {

inline constexpr std::size_t kVerdicts = 6;      // enum class Verdict
inline constexpr std::size_t kTimeoutCauses = 4; // rw_timeout_cause (0 = unknown)
inline constexpr std::size_t kKeepaliveOptions = 5;
inline constexpr std::size_t kSockoptResults = 3; // ok, error, misdirected

// Counts the event loop keeps; all monotonic over the session.
struct TraceCounters {
    // [0 sent, 1 received][Verdict]
    std::array<std::array<std::uint64_t, kVerdicts>, 2> resets{};
    // [rw_timeout_cause][Verdict]
    std::array<std::array<std::uint64_t, kVerdicts>, kTimeoutCauses> timeouts{};
    // [RW_OPT_* bit index][ok, error, misdirected]; only with --events keepalive
    std::array<std::array<std::uint64_t, kSockoptResults>, kKeepaliveOptions> keepalive_set{};
    EventCounts emitted{};
    EventCounts rate_limited{};
    std::uint64_t filtered_kernel = 0;
    std::uint64_t filtered_user = 0;
    std::uint64_t write_dropped = 0;
    std::uint64_t malformed = 0;
    // Ring-buffer reservations that failed, per record type (lost.by_type keys).
    std::array<std::uint64_t, 4> ringbuf_lost{};
    std::uint64_t config_reloads_ok = 0;
    std::uint64_t config_reloads_failed = 0;
    bool last_reload_ok = true;
};

// Audit gauges: one series per process name, bounded.
struct CommGauge {
    std::string comm;
    std::uint64_t connections = 0;
    std::uint64_t without_keepalive = 0;
    bool operator==(const CommGauge &) const = default;
};

struct AuditGauges {
    std::uint64_t runs = 0; // 0: no audit yet (no gauges exposed)
    double last_run_unix_s = 0;
    double duration_s = 0;
    std::uint64_t processes = 0;
    std::uint64_t connections = 0;
    std::uint64_t without_keepalive = 0;
    std::vector<CommGauge> by_comm; // top N by connections without keepalive, then "other"
};

struct BuildInfo {
    std::string version;
    std::string kernel;
    std::string setsockopt_hook; // cgroup, syscall, none
    bool kernel_reason = false;  // sk_rst_reason available on this kernel
    bool keepalive_events = false;
    double start_time_unix_s = 0;
};

// Connections the HTTP server refused or cut, by reason. Written by the HTTP
// threads themselves (atomics), read when rendering.
struct HttpCounters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> busy{0};      // every worker and queue slot taken: 503
    std::atomic<std::uint64_t> too_large{0}; // request line + headers over the byte limit
    std::atomic<std::uint64_t> timeout{0};   // not done within the per-connection deadline
};

class MetricsRegistry {
  public:
    struct View {
        BuildInfo build;
        TraceCounters counters;
        AuditGauges audit;
    };
    void set_build_info(BuildInfo b);
    void publish(const TraceCounters &c);
    void publish_audit(AuditGauges g);
    View read() const;
    HttpCounters &http() { return http_; }
    const HttpCounters &http() const { return http_; }

  private:
    mutable std::mutex mu_;
    View view_;
    HttpCounters http_;
};

// Text exposition format 0.0.4 (what Prometheus scrapes and promtool checks).
std::string render_prometheus(const MetricsRegistry::View &v, const HttpCounters &http);

// A label value: escaped (\\, \", \n) and valid UTF-8 (invalid bytes become
// U+FFFD), since a comm is any 15 bytes a process chose.
std::string prometheus_label_value(std::string_view raw);

// Process rows of an audit -> per-comm gauges: the `top_n` names with the most
// connections without keepalive (then most connections, then name), the rest
// summed into comm="other".
std::vector<CommGauge> top_comm_gauges(const std::vector<AuditProcess> &processes,
                                       std::size_t top_n);

// Index helpers shared with the pipeline.
std::size_t keepalive_option_index(int level, int optname); // kKeepaliveOptions if none

} // namespace rstwatch
