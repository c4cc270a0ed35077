// `rstwatch enforce`, what needs no libbpf: the enforcement's counters and
// what --status and --remove find in the kernel and under bpffs, for the
// formatter (enforce/format.hpp) as well as the loader.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rstwatch/records.h"

namespace rstwatch {

struct EnforceCounters {
    std::array<std::uint64_t, RW_ENF_CNT_MAX> v{};
    std::uint64_t operator[](rw_enf_counter c) const { return v[std::size_t(c)]; }
    // Connections changed (or, in a dry run, that would have been).
    std::uint64_t changed() const {
        return v[RW_ENF_CNT_ACTIVE] + v[RW_ENF_CNT_PASSIVE] + v[RW_ENF_CNT_EXISTING] +
               v[RW_ENF_CNT_CLAMP];
    }
};

// ---- --status and --remove ----

// An enforcement attached somewhere on this host, found through the kernel's
// list of BPF links (ours are recognised by program name).
struct ActiveEnforcement {
    std::uint64_t cgroup_id = 0;
    std::vector<std::string> programs; // "sockops", "setsockopt"
    std::vector<std::uint32_t> link_ids;
    std::optional<rw_enforce_config> config; // absent: written by an incompatible rstwatch
    std::optional<EnforceCounters> counters;
    std::string pin_dir; // empty: not pinned (held by a running rstwatch)
};

// Needs CAP_SYS_ADMIN (the kernel restricts enumerating BPF objects to it).
std::vector<ActiveEnforcement> list_enforcements();

struct RemoveResult {
    std::string pin_dir;
    std::vector<std::string> removed; // names of the links detached and unpinned
};
// Detaches and unpins the pinned enforcement of a cgroup (nothing to do is not
// an error: `removed` is empty).
RemoveResult remove_pinned(std::uint64_t cgroup_id);

// Whether a process is still running (for an installer pid in --status).
bool process_running(std::uint32_t pid);

} // namespace rstwatch
