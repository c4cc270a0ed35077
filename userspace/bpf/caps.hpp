// Linux capabilities: what this process holds, and a check that names what a
// command is missing before it loads anything (so a bare EPERM from the
// kernel never is the only diagnosis).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rstwatch {

// Capability numbers as in <linux/capability.h>; only the ones rstwatch names.
enum class Cap : int {
    dac_override = 1,
    dac_read_search = 2,
    net_admin = 12,
    sys_ptrace = 19,
    sys_admin = 21,
    sys_resource = 24,
    perfmon = 38,
    bpf = 39,
};

// "CAP_BPF" for Cap::bpf; "CAP_<n>" for numbers without a name here.
std::string cap_name(int cap);
inline std::string cap_name(Cap c) {
    return cap_name(int(c));
}
// "CAP_BPF", "cap_bpf", "bpf" -> 39, for every capability up to CAP_LAST_CAP.
std::optional<int> cap_from_name(std::string_view name);
// Every capability the kernel headers know (0 .. CAP_LAST_CAP).
int cap_last();

// Effective capability set of this process (bit n = capability n), from capget(2).
std::uint64_t effective_caps();

// One capability a command needs, and why (for the message).
struct CapNeed {
    Cap cap;
    std::string why;
};

// The needs that `effective` does not satisfy. CAP_SYS_ADMIN satisfies CAP_BPF,
// CAP_PERFMON and CAP_NET_ADMIN, as the kernel's bpf_capable(), perfmon_capable()
// and bpf_net_capable() accept it; CAP_DAC_OVERRIDE satisfies CAP_DAC_READ_SEARCH
// for reading files.
std::vector<CapNeed> missing_caps(std::uint64_t effective, const std::vector<CapNeed> &need);

// Throws EnvironmentError (exit 3) if the effective set lacks any of `need`:
// "<command> is missing CAP_PERFMON (why) ...; run as root or grant ...".
void require_caps(std::string_view command, const std::vector<CapNeed> &need);
// The same check against a given set (unit-testable).
void require_caps(std::string_view command, const std::vector<CapNeed> &need,
                  std::uint64_t effective);

// For a file operation that failed with `err` on something root owns (BPF pins,
// tracefs): " (missing CAP_DAC_OVERRIDE: ...)" when a non-root process without
// that capability got EACCES, else "". Appended to the error message.
std::string dac_override_hint(int err, std::string_view what);

// True when this process is in the initial user namespace: capabilities held in
// a child user namespace do not count for BPF.
bool in_initial_user_namespace();

} // namespace rstwatch
