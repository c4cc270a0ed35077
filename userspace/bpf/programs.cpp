// What loading an object's programs needs (capabilities, tracepoints) and
// why a load failed.
#include "bpf/bpf_util.hpp"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <linux/magic.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <thread>
#include <unistd.h>

#include "bpf/btf_scan.hpp"
#include "bpf/caps.hpp"
#include "bpf/internal.hpp"
#include "util/log.hpp"

namespace rstwatch {

using namespace bpf_detail;

namespace {

bool is_perfmon_type(bpf_prog_type t) {
    switch (t) {
    case BPF_PROG_TYPE_KPROBE:
    case BPF_PROG_TYPE_TRACEPOINT:
    case BPF_PROG_TYPE_PERF_EVENT:
    case BPF_PROG_TYPE_RAW_TRACEPOINT:
    case BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE:
    case BPF_PROG_TYPE_TRACING:
    case BPF_PROG_TYPE_LSM:
    case BPF_PROG_TYPE_STRUCT_OPS:
    case BPF_PROG_TYPE_EXT:
        return true;
    default:
        return false;
    }
}

bool is_net_admin_type(bpf_prog_type t) {
    switch (t) {
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT:
    case BPF_PROG_TYPE_XDP:
    case BPF_PROG_TYPE_LWT_IN:
    case BPF_PROG_TYPE_LWT_OUT:
    case BPF_PROG_TYPE_LWT_XMIT:
    case BPF_PROG_TYPE_LWT_SEG6LOCAL:
    case BPF_PROG_TYPE_SK_SKB:
    case BPF_PROG_TYPE_SK_MSG:
    case BPF_PROG_TYPE_FLOW_DISSECTOR:
    case BPF_PROG_TYPE_CGROUP_DEVICE:
    case BPF_PROG_TYPE_CGROUP_SOCK:
    case BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
    case BPF_PROG_TYPE_CGROUP_SOCKOPT:
    case BPF_PROG_TYPE_CGROUP_SYSCTL:
    case BPF_PROG_TYPE_SOCK_OPS:
    case BPF_PROG_TYPE_EXT:
        return true;
    default:
        return false;
    }
}

template <class F> void for_each_autoload(const bpf_object *obj, F f) {
    for (bpf_program *p = nullptr; (p = bpf_object__next_program(obj, p));)
        if (bpf_program__autoload(p)) f(p);
}

constexpr const char *kTracefs = "/sys/kernel/tracing";
constexpr const char *kDebugfsTracing = "/sys/kernel/debug/tracing";
// The tracefs directory libbpf reads tracepoint ids from: the debugfs path when
// it exists (libbpf's own rule), else /sys/kernel/tracing, mounted if need be.
// "Mounted" means it has an events/ directory (or one we may not look into).
std::string tracefs_dir(std::string_view command) {
    struct stat st {};
    if (stat(kDebugfsTracing, &st) == 0) return kDebugfsTracing;
    const std::string events = std::string(kTracefs) + "/events";
    if (stat(events.c_str(), &st) == 0 || errno == EACCES) return kTracefs;
    if (mount("nodev", kTracefs, "tracefs", 0, nullptr) == 0) return kTracefs;
    int err = errno;
    if (err == EPERM && !missing_caps(effective_caps(), {{Cap::sys_admin, ""}}).empty())
        throw EnvironmentError(std::string(command) +
                               " is missing CAP_SYS_ADMIN (to mount tracefs, which is not "
                               "mounted): mount it once with `mount -t tracefs nodev " +
                               kTracefs + "` (or run as root)");
    throw EnvironmentError(std::string("tracefs is not mounted and mounting it failed (") +
                           std::strerror(err) + "): mount -t tracefs nodev " + kTracefs);
}

} // namespace

std::vector<CapNeed> caps_for_programs(const bpf_object *obj) {
    std::string perfmon, net_admin, tracepoints;
    for_each_autoload(obj, [&](const bpf_program *p) {
        std::string name = bpf_program__name(p);
        std::string_view sec = bpf_program__section_name(p);
        if (sec.rfind("tracepoint/", 0) == 0 || sec.rfind("tp/", 0) == 0)
            tracepoints += (tracepoints.empty() ? "" : ", ") + name;
        if (is_perfmon_type(bpf_program__type(p))) perfmon += (perfmon.empty() ? "" : ", ") + name;
        if (is_net_admin_type(bpf_program__type(p)))
            net_admin += (net_admin.empty() ? "" : ", ") + name;
    });
    std::vector<CapNeed> need{{Cap::bpf, "to create BPF maps and load programs"}};
    if (!perfmon.empty())
        need.push_back({Cap::perfmon, "for tracing programs that read kernel memory: " + perfmon});
    if (!net_admin.empty())
        need.push_back({Cap::net_admin, "for networking/cgroup programs: " + net_admin});
    // Classic tracepoints are attached by the id libbpf reads from tracefs, which
    // is root's (mode 0700) unless the admin mounted it otherwise. Root reads it
    // as its owner; another uid needs CAP_DAC_READ_SEARCH, unless plain
    // permissions already let it in.
    if (!tracepoints.empty() && geteuid() != 0) {
        struct stat st {};
        std::string events =
            std::string(stat(kDebugfsTracing, &st) == 0 ? kDebugfsTracing : kTracefs) + "/events";
        const bool holds = missing_caps(effective_caps(), {{Cap::dac_read_search, ""}}).empty();
        const bool denied =
            faccessat(AT_FDCWD, events.c_str(), R_OK | X_OK, AT_EACCESS) != 0 && errno == EACCES;
        if (holds || denied)
            need.push_back(
                {Cap::dac_read_search,
                 "to read tracepoint ids from tracefs, which only root may read: " + tracepoints});
    }
    return need;
}

void require_tracepoints(const bpf_object *obj, std::string_view command) {
    std::string dir; // tracefs, resolved on first use
    for_each_autoload(obj, [&](const bpf_program *p) {
        std::string_view sec = bpf_program__section_name(p);
        if (sec.rfind("tracepoint/", 0) == 0 || sec.rfind("tp/", 0) == 0) {
            std::string tp(sec.substr(sec.find('/') + 1));
            if (dir.empty()) dir = tracefs_dir(command);
            std::string id = dir + "/events/" + tp + "/id";
            int fd = open(id.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                close(fd);
                return;
            }
            int err = errno;
            if ((err == EACCES || err == EPERM) &&
                !missing_caps(effective_caps(), {{Cap::dac_read_search, ""}}).empty())
                throw EnvironmentError(
                    std::string(command) + " is missing CAP_DAC_READ_SEARCH (to read " + id +
                    ": tracefs is readable by root only). Run it as root, or grant "
                    "CAP_DAC_READ_SEARCH as well (docs/security.md)");
            if (err == ENOENT)
                throw EnvironmentError(
                    "the running kernel has no tracepoint " + tp + " (no " + id + "), which " +
                    bpf_program__name(p) +
                    " attaches to. Syscall tracepoints need CONFIG_FTRACE_SYSCALLS=y; without "
                    "--events keepalive rstwatch does not use them");
            throw EnvironmentError("cannot read " + id + " (" + std::strerror(err) + ")");
        }
    });
}

Error explain_load_failure(const bpf_object *obj, std::string_view what, int err) {
    if (err < 0) err = -err;
    if (err == ESRCH || err == ENOENT || err == EINVAL || err == EOPNOTSUPP) {
        // A tp_btf program names its tracepoint by the btf_trace_<name> typedef
        // in the kernel's BTF: without it, this kernel lacks the tracepoint.
        // Checked only on failure: parsing BTF costs ~10 ms at every start.
        std::unique_ptr<btf, void (*)(btf *)> vmlinux(btf__load_vmlinux_btf(), btf__free);
        if (!vmlinux)
            return EnvironmentError(std::string("cannot parse the kernel BTF at ") + kVmlinuxBtf +
                                    ": " + kBtfFix);
        std::string missing;
        for_each_autoload(obj, [&](const bpf_program *p) {
            std::string_view sec = bpf_program__section_name(p);
            if (!missing.empty() || sec.rfind("tp_btf/", 0) != 0) return;
            std::string tp(sec.substr(7));
            if (btf__find_by_name_kind(vmlinux.get(), ("btf_trace_" + tp).c_str(),
                                       BTF_KIND_TYPEDEF) <= 0)
                missing = "the running kernel has no tracepoint " + tp +
                          " (its BTF lacks btf_trace_" + tp + "), which " + bpf_program__name(p) +
                          " attaches to: run rstwatch on a supported kernel (docs/kernels.md)";
        });
        if (!missing.empty()) return EnvironmentError(missing);
    }
    return bpf_failure(what, err);
}

} // namespace rstwatch
