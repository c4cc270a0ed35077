// rstwatch enforce: privileges, bpffs pins, network namespaces of a cgroup.
#include "enforce/enforce.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <linux/capability.h>
#include <linux/magic.h>
#include <set>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "enforce/internal.hpp"
#include "util/log.hpp"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

namespace rstwatch {

namespace fs = std::filesystem;
using namespace enforce_detail;

namespace {

bool has_cap(std::uint64_t eff, int cap) {
    return (eff >> cap) & 1;
}

} // namespace

// ---- privileges ----

std::string enforce_capability_problem(std::uint64_t eff, EnforceAction action) {
    // CAP_SYS_ADMIN stands in for each of these (bpf_capable, perfmon_capable,
    // bpf_net_capable in the kernel).
    if (has_cap(eff, CAP_SYS_ADMIN)) return {};
    struct Need {
        int cap;
        const char *name;
        const char *why;
    };
    std::vector<Need> needs;
    std::string grant;
    switch (action) {
    case EnforceAction::enforce:
        needs = {{CAP_BPF, "CAP_BPF", "to load BPF programs"},
                 {CAP_PERFMON, "CAP_PERFMON", "to read socket state and run BPF iterators"},
                 {CAP_NET_ADMIN, "CAP_NET_ADMIN",
                  "to attach programs to a cgroup and set socket options"}};
        grant = "CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN";
        break;
    case EnforceAction::remove:
        needs = {{CAP_BPF, "CAP_BPF", "to open and detach the pinned BPF links"}};
        grant = "CAP_BPF";
        break;
    case EnforceAction::status:
        // The kernel lets only CAP_SYS_ADMIN enumerate BPF links and programs.
        return "rstwatch enforce --status is missing CAP_SYS_ADMIN (the kernel allows only it to "
               "list BPF links and programs): run it as root";
    }
    std::string missing;
    for (const auto &n : needs) {
        if (has_cap(eff, n.cap)) continue;
        if (!missing.empty()) missing += ", ";
        missing += std::string(n.name) + " (" + n.why + ")";
    }
    if (missing.empty()) return {};
    return "rstwatch enforce is missing " + missing + ": run it as root, or grant " + grant +
           " (for example AmbientCapabilities= in a systemd unit, or setcap on the binary)";
}

// ---- pins ----

std::string enforce_pin_dir(std::uint64_t cgroup_id) {
    return std::string(kPinRoot) + "/cg" + std::to_string(cgroup_id);
}

void ensure_bpffs() {
    struct statfs st {};
    if (statfs(kBpffsMount, &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
    mkdir(kBpffsMount, 0700);
    int err = 0;
    if (mount("bpf", kBpffsMount, "bpf", 0, "mode=0700") != 0) err = errno;
    if (err || statfs(kBpffsMount, &st) != 0 || st.f_type != BPF_FS_MAGIC)
        throw EnvironmentError(std::string("--pin needs the BPF filesystem at ") + kBpffsMount +
                               ", which is not mounted, and mounting it failed (" +
                               errno_text(err ? err : EINVAL) +
                               "). Fix: mount -t bpf bpf /sys/fs/bpf");
}

std::vector<std::string> pinned_links(const std::string &dir) {
    std::vector<std::string> out;
    for (const char *name : {"sockops", "setsockopt"})
        if (access((dir + "/" + name).c_str(), F_OK) == 0) out.emplace_back(name);
    return out;
}

// ---- network namespaces ----

std::vector<NetnsRef> cgroup_network_namespaces(const std::string &cgroup_dir) {
    std::vector<NetnsRef> out;
    std::set<std::uint64_t> seen;
    auto add = [&](const std::string &path, bool own) {
        struct stat st {};
        if (stat(path.c_str(), &st) != 0) return; // the process exited
        if (!seen.insert(st.st_ino).second) return;
        out.push_back({st.st_ino, path, own});
    };
    add("/proc/self/ns/net", true);
    std::error_code ec;
    auto visit = [&](const fs::path &dir) {
        std::ifstream procs(dir / "cgroup.procs");
        std::string pid;
        while (std::getline(procs, pid))
            if (!pid.empty()) add("/proc/" + pid + "/ns/net", false);
    };
    visit(cgroup_dir);
    for (fs::recursive_directory_iterator
             it(cgroup_dir, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) visit(it->path());
    return out;
}

} // namespace rstwatch
