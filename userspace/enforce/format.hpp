// Output of `rstwatch enforce`: keepalive_enforced, enforce_start,
// enforce_stop, enforce_status and enforce_removed, as NDJSON (the contract in
// docs/events.md and schema/) or as readable text lines.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enforce/enforce.hpp"
#include "util/cgroup_fs.hpp"
#include "event/options.hpp"
#include "rstwatch/records.h"

namespace rstwatch {

// One change (or would-be change) of a connection's keepalive.
struct EnforcedEvent {
    const rw_enforce &rec;
    std::int64_t ts_ns; // realtime
    const CgroupInfo *cgroup;
};

// What an enforcement applies: from the command line (start) or read back from
// the kernel (status).
struct EnforceSettings {
    std::uint64_t cgroup_id = 0;
    std::string cgroup; // relative to the cgroup v2 root; empty when unknown (removed)
    EnforceMode mode = EnforceMode::unset_only;
    std::uint32_t idle_s = 0;
    std::optional<std::uint32_t> interval_s; // unset: the netns default
    std::optional<std::uint32_t> probes;
    bool dry_run = false;

    static EnforceSettings from_config(const rw_enforce_config &c);
};

struct ExistingSummary {
    std::uint64_t connections = 0; // changed (or would be, in a dry run)
    std::uint32_t namespaces = 0;
    std::uint32_t namespaces_skipped = 0;
};

struct EnforceStart {
    std::int64_t ts_ns;
    std::string_view version;
    std::string_view kernel;
    std::uint32_t pid;
    EnforceSettings settings;
    std::vector<std::string> programs;
    std::uint64_t owners_seeded = 0;
    std::optional<ExistingSummary> existing; // absent without --existing
    std::string pinned;                      // pin directory; empty when not pinned
    std::uint32_t startup_ms = 0;
};

struct EnforceStop {
    std::int64_t ts_ns;
    std::uint64_t duration_ms;
    std::string_view end_reason; // signal, duration, output_closed, installed
    EnforceCounters counters;
    bool detached;      // false: left in place, pinned
    std::string pinned; // pin directory; empty when not pinned
};

struct EnforceStatus {
    std::int64_t ts_ns;
    const ActiveEnforcement &active;
    std::optional<EnforceSettings> settings; // absent: an incompatible rstwatch installed it
    bool installer_running = false;
};

struct EnforceRemoved {
    std::int64_t ts_ns;
    std::string cgroup;
    std::uint64_t cgroup_id;
    const RemoveResult &result;
};

class EnforceFormatter {
  public:
    virtual ~EnforceFormatter() = default;
    virtual void start(std::string &out, const EnforceStart &e) = 0;
    virtual void enforced(std::string &out, const EnforcedEvent &e) = 0;
    virtual void stop(std::string &out, const EnforceStop &e) = 0;
    virtual void status(std::string &out, const EnforceStatus &e) = 0;
    virtual void removed(std::string &out, const EnforceRemoved &e) = 0;
    // Records the kernel could not queue (ring buffer full) since the last call.
    virtual void lost(std::string &out, std::int64_t ts_ns, std::uint64_t lost,
                      std::uint64_t total) = 0;
};

std::unique_ptr<EnforceFormatter> make_enforce_formatter(Format format, std::string host);

std::string_view to_string(EnforceMode m);
// "active_open", "passive_open", "existing", "setsockopt"; "unknown" otherwise.
std::string_view enforce_trigger_name(std::uint8_t trigger);

} // namespace rstwatch
