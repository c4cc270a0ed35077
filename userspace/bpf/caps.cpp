#include "bpf/caps.hpp"

#include <array>
#include <cerrno>
#include <cctype>
#include <fstream>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/error.hpp"

namespace rstwatch {

namespace {

// Index = capability number (<linux/capability.h>).
constexpr std::array<std::string_view, 41> kNames = {"chown",
                                                     "dac_override",
                                                     "dac_read_search",
                                                     "fowner",
                                                     "fsetid",
                                                     "kill",
                                                     "setgid",
                                                     "setuid",
                                                     "setpcap",
                                                     "linux_immutable",
                                                     "net_bind_service",
                                                     "net_broadcast",
                                                     "net_admin",
                                                     "net_raw",
                                                     "ipc_lock",
                                                     "ipc_owner",
                                                     "sys_module",
                                                     "sys_rawio",
                                                     "sys_chroot",
                                                     "sys_ptrace",
                                                     "sys_pacct",
                                                     "sys_admin",
                                                     "sys_boot",
                                                     "sys_nice",
                                                     "sys_resource",
                                                     "sys_time",
                                                     "sys_tty_config",
                                                     "mknod",
                                                     "lease",
                                                     "audit_write",
                                                     "audit_control",
                                                     "setfcap",
                                                     "mac_override",
                                                     "mac_admin",
                                                     "syslog",
                                                     "wake_alarm",
                                                     "block_suspend",
                                                     "audit_read",
                                                     "perfmon",
                                                     "bpf",
                                                     "checkpoint_restore"};
static_assert(kNames.size() == CAP_LAST_CAP + 1, "capability name table out of date");

bool has(std::uint64_t set, Cap c) {
    return (set >> int(c)) & 1u;
}

bool satisfied(std::uint64_t eff, Cap c) {
    if (has(eff, c)) return true;
    switch (c) {
    case Cap::bpf:
    case Cap::perfmon:
    case Cap::net_admin:
        return has(eff, Cap::sys_admin);
    case Cap::dac_read_search:
        return has(eff, Cap::dac_override);
    default:
        return false;
    }
}

} // namespace

std::string cap_name(int cap) {
    std::string out = "CAP_";
    if (cap < 0 || std::size_t(cap) >= kNames.size()) return out + std::to_string(cap);
    for (char c : kNames[std::size_t(cap)])
        out += char(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::optional<int> cap_from_name(std::string_view name) {
    std::string lower;
    for (char c : name)
        lower += char(std::tolower(static_cast<unsigned char>(c)));
    if (lower.rfind("cap_", 0) == 0) lower = lower.substr(4);
    for (std::size_t i = 0; i < kNames.size(); ++i)
        if (kNames[i] == lower) return int(i);
    return std::nullopt;
}

int cap_last() {
    return CAP_LAST_CAP;
}

std::uint64_t effective_caps() {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    // No glibc wrapper (libcap provides one); the raw syscall needs no library.
    if (syscall(SYS_capget, &hdr, data) != 0) return 0;
    return std::uint64_t(data[0].effective) | (std::uint64_t(data[1].effective) << 32);
}

std::vector<CapNeed> missing_caps(std::uint64_t effective, const std::vector<CapNeed> &need) {
    std::vector<CapNeed> out;
    for (const auto &n : need)
        if (!satisfied(effective, n.cap)) out.push_back(n);
    return out;
}

void require_caps(std::string_view command, const std::vector<CapNeed> &need) {
    require_caps(command, need, effective_caps());
}

void require_caps(std::string_view command, const std::vector<CapNeed> &need,
                  std::uint64_t effective) {
    auto miss = missing_caps(effective, need);
    if (miss.empty()) return;
    std::string names, all;
    for (const auto &m : miss)
        names += (names.empty() ? "" : ", ") + cap_name(m.cap) + " (" + m.why + ")";
    for (const auto &n : need)
        all += (all.empty() ? "" : " ") + cap_name(n.cap);
    throw EnvironmentError(std::string(command) + " is missing " + names + ". Run it as root, " +
                           "or grant exactly these capabilities, e.g. systemd " +
                           "AmbientCapabilities=" + all + " (docs/security.md)");
}

std::string dac_override_hint(int err, std::string_view what) {
    if (err != EACCES || geteuid() == 0 || has(effective_caps(), Cap::dac_override)) return {};
    return " (missing CAP_DAC_OVERRIDE: " + std::string(what) +
           " belongs to root; run as root, grant CAP_DAC_OVERRIDE, or create it owned by this "
           "user)";
}

bool in_initial_user_namespace() {
    std::ifstream in("/proc/self/uid_map");
    unsigned long inside = 1, outside = 1, count = 0;
    if (!(in >> inside >> outside >> count)) return true; // no user namespaces
    return inside == 0 && outside == 0 && count == 4294967295ul;
}

} // namespace rstwatch
