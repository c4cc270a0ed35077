// What the format stage receives: a decoded record plus everything the enrich
// and diagnose stages added. Views (references), built per event on the stack.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "event/diagnose.hpp"
#include "util/cgroup_fs.hpp"
#include "event/event_kind.hpp"
#include "rstwatch/records.h"

namespace rstwatch {

// JSON schema version carried by every output line ("v"). Bump on any
// incompatible change to field names, types or meaning (docs/events.md).
inline constexpr int kSchemaVersion = 1;

struct ResetEvent {
    const rw_reset &rec;
    std::int64_t ts_ns;             // realtime
    std::string_view kernel_reason; // empty: the kernel gives none
    const Diagnosis &dx;
    Origin origin;
    const CgroupInfo *cgroup;
};

// A connection the kernel aborted because the peer stopped answering.
struct TimeoutEvent {
    const rw_close &rec;
    std::int64_t ts_ns;
    const Diagnosis &dx;
    const CgroupInfo *cgroup;
};

struct ClosedEvent {
    const rw_close &rec;
    std::int64_t ts_ns;
    const CgroupInfo *cgroup;
};

struct KeepaliveSetEvent {
    const rw_sockopt &rec;
    std::int64_t ts_ns;
    const CgroupInfo *cgroup;
};

struct LostEvent {
    std::int64_t ts_ns;
    std::string_view reason; // "ringbuf_full", "rate_limit", "write_error"
    std::uint64_t lost;      // since the previous lost event of this reason
    std::uint64_t total;     // since the session started
    // Per record type: reset, keepalive, close (timeouts and closed
    // connections), enforce.
    std::array<std::uint64_t, 4> by_type{};
    // rate_limit only: `lost` per event type (tcp_reset, tcp_timeout,
    // connection_closed, keepalive_set).
    const EventCounts *by_event = nullptr;
};

struct SessionStart {
    std::int64_t ts_ns;
    std::string_view version;
    std::string_view kernel;
    std::uint32_t pid;
    std::vector<std::string> events;
    std::string_view setsockopt_hook;
    bool kernel_reason_available;
    unsigned hz;
    std::uint64_t ringbuf_bytes;
    std::uint64_t seeded_sockets;
    std::uint32_t startup_ms;
};

struct ProcessSummary {
    std::uint32_t pid = 0;
    std::string comm;
    std::uint32_t uid = 0;
    std::uint64_t connections = 0;
    std::uint64_t open_connections = 0;
    std::uint64_t without_keepalive = 0;
    std::uint64_t resets_received = 0;
    std::uint64_t resets_sent = 0;
    std::uint64_t timeouts = 0;
    std::uint32_t keepalive_options = 0; // RW_OPT_*
    const CgroupInfo *cgroup = nullptr;
};

struct SessionSummary {
    std::int64_t ts_ns;
    std::uint64_t duration_ms;
    std::string_view end_reason; // "signal", "duration", "count", "output_closed"
    std::uint64_t emitted;       // event lines written, excluding session_* records
    std::uint64_t filtered_kernel;
    std::uint64_t filtered_user;
    std::uint64_t lost;
    std::uint64_t rate_limited;
    std::uint64_t write_dropped;
    std::uint64_t malformed;
    std::uint64_t resets;
    std::uint64_t timeouts;
};

enum class Risk { expired, exposed, protected_ };
std::string_view to_string(Risk r);

struct AuditSocket {
    rw_snapshot rec;
    std::int64_t ts_ns;
    const CgroupInfo *cgroup;
    bool shared; // the same socket is held by more than one process
    std::optional<Risk> risk;
};

struct AuditProcess {
    std::int64_t ts_ns;
    std::uint32_t pid = 0;
    std::string comm;
    std::uint32_t uid = 0;
    std::uint64_t sockets = 0;
    std::uint64_t without_keepalive = 0;
    std::uint64_t max_idle_ms = 0;
    std::optional<std::array<std::uint64_t, 3>> risk_counts; // expired, exposed, protected
    const CgroupInfo *cgroup = nullptr;
};

// Names of RW_OPT_* bits, in bit order.
std::vector<std::string_view> keepalive_option_names(std::uint32_t mask);
std::string_view sockopt_name(int level, int optname);

} // namespace rstwatch
