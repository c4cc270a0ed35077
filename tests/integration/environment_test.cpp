// Privileged: what the host lacks is exit 3 with what is missing and how to fix
// it. Each fault is made real in a private mount namespace (unshare -m), so the
// host and other tests never see it:
//   - no BTF: tmpfs over /sys/kernel/btf (no vmlinux file), or an empty file
//     bind-mounted over /sys/kernel/btf/vmlinux;
//   - a tp_btf tracepoint missing: a copy of the kernel's BTF in which the
//     btf_trace_tcp_send_reset typedef is renamed, bind-mounted over the real
//     one: exactly what a kernel without that tracepoint shows userspace;
//   - a syscall tracepoint missing: a tmpfs with an empty events/ directory
//     over tracefs, which is what a kernel without CONFIG_FTRACE_SYSCALLS shows;
//   - tracefs not mounted: unmounted in the namespace (rstwatch mounts it when
//     it may, and names CAP_SYS_ADMIN when it may not);
//   - bpffs not mounted for `enforce --pin`: the same; the pins a root run leaves
//     in its private bpffs go with the namespace (checked: nothing stays
//     attached to the test cgroup).
// Rows that must fail run under rw_nobpf: they fail before any bpf(2) call.
#include <fstream>
#include <sched.h>
#include <sstream>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpf_objects.hpp"
#include "bpf/bpf_util.hpp"
#include "util/error.hpp"
#include "harness.hpp"

using namespace rwtest;

namespace {

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The kernel's BTF with one tracepoint's typedef renamed (same length, so every
// offset stays valid). Returns the file's path.
std::string btf_without_tracepoint(const std::string &tp) {
    std::string btf = read_file("/sys/kernel/btf/vmlinux");
    const std::string name = std::string("\0btf_trace_", 11) + tp + std::string("\0", 1);
    auto at = btf.find(name);
    EXPECT_NE(at, std::string::npos) << "no btf_trace_" << tp << " in the kernel BTF";
    EXPECT_EQ(btf.find(name, at + 1), std::string::npos) << "the name occurs twice";
    if (at != std::string::npos) btf[at + name.size() - 2] = '_'; // ..._reset -> ..._rese_
    std::string path = "/tmp/rwtest-btf-" + std::to_string(getpid());
    std::ofstream(path, std::ios::binary) << btf;
    return path;
}

std::string quote(const std::vector<std::string> &argv) {
    std::string s;
    for (const auto &a : argv)
        s += " '" + a + "'";
    return s;
}

struct EnvCase {
    std::string name;
    std::string setup; // shell, run as root inside the private mount namespace
    std::vector<std::string> args;
    int exit_code;
    std::vector<std::string> mentions; // in stderr
    bool nobpf;                        // run under rw_nobpf (must fail before loading)
    std::string as = "";               // capsh prefix to drop privileges after setup
};

const char *kNobodyBpf =
    "capsh --caps='cap_setpcap,cap_setuid,cap_setgid+ep "
    "cap_bpf,cap_perfmon,cap_dac_read_search+eip'"
    " --keep=1 --user=nobody --addamb=cap_bpf,cap_perfmon,cap_dac_read_search -- -c 'exec \"$@\"' "
    "rw";

const char *kNobodyEnforce =
    "capsh --caps='cap_setpcap,cap_setuid,cap_setgid+ep cap_bpf,cap_perfmon,cap_net_admin+eip'"
    " --keep=1 --user=nobody --addamb=cap_bpf,cap_perfmon,cap_net_admin -- -c 'exec \"$@\"' rw";

std::vector<EnvCase> env_cases(const std::string &patched_btf, const std::string &cgroup) {
    const std::string no_btf = "mount -t tmpfs rwtest /sys/kernel/btf";
    const std::string empty_btf = "touch /tmp/rwtest-empty-$$ && mount --bind /tmp/rwtest-empty-$$ "
                                  "/sys/kernel/btf/vmlinux && rm /tmp/rwtest-empty-$$";
    const std::string tp_btf_gone = "mount --bind " + patched_btf + " /sys/kernel/btf/vmlinux";
    const std::string syscalls_gone =
        "mount -t tmpfs rwtest /sys/kernel/tracing && mkdir /sys/kernel/tracing/events && "
        "if [ -d /sys/kernel/debug/tracing ]; then mount --bind /sys/kernel/tracing "
        "/sys/kernel/debug/tracing; fi";
    const std::string tracefs_unmounted = "umount -l /sys/kernel/tracing";
    const std::string bpffs_unmounted = "umount -l /sys/fs/bpf";
    const std::vector<std::string> missing_btf{"/sys/kernel/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF"};
    return {
        {"trace_no_btf", no_btf, {"trace"}, 3, missing_btf, true},
        {"audit_no_btf", no_btf, {"audit"}, 3, missing_btf, true},
        {"trace_empty_btf", empty_btf, {"trace"}, 3, {"empty", "CONFIG_DEBUG_INFO_BTF"}, true},
        {"audit_empty_btf", empty_btf, {"audit"}, 3, {"empty", "CONFIG_DEBUG_INFO_BTF"}, true},
        // Found when the load fails (checking BTF up front would cost every start
        // ~10 ms), so this one does reach bpf(2), and cleans up on exit.
        {"trace_no_tcp_send_reset",
         tp_btf_gone,
         {"trace"},
         3,
         {"no tracepoint tcp_send_reset", "rw_tcp_send_reset", "docs/kernels.md"},
         false},
        // audit does not attach to it: the check is per program, not global.
        {"audit_without_tcp_send_reset", tp_btf_gone, {"audit", "--port", "1"}, 0, {}, false},
        {"keepalive_no_syscall_tracepoints",
         syscalls_gone,
         {"trace", "--events", "keepalive"},
         3,
         {"no tracepoint syscalls/sys_enter_setsockopt", "CONFIG_FTRACE_SYSCALLS"},
         true},
        {"trace_without_syscall_tracepoints",
         syscalls_gone,
         {"trace", "--duration", "1s", "--port", "1"},
         0,
         {},
         false},
        // Root mounts tracefs itself (in its own namespace here)...
        {"keepalive_tracefs_unmounted_root",
         tracefs_unmounted,
         {"trace", "--events", "keepalive", "--duration", "1s", "--port", "1"},
         0,
         {},
         false},
        // ...a process without CAP_SYS_ADMIN cannot, and is told so.
        {"keepalive_tracefs_unmounted_nobody",
         tracefs_unmounted,
         {"trace", "--events", "keepalive"},
         3,
         {"missing CAP_SYS_ADMIN", "mount -t tracefs nodev /sys/kernel/tracing"},
         true,
         kNobodyBpf},
        // enforce --pin mounts bpffs itself when it may...
        {"enforce_pin_bpffs_unmounted_root",
         bpffs_unmounted,
         {"enforce", "--cgroup", cgroup, "--idle", "60s", "--pin"},
         0,
         {},
         false},
        // ...and says how to mount it when it may not.
        {"enforce_pin_bpffs_unmounted_nobody",
         bpffs_unmounted,
         {"enforce", "--cgroup", cgroup, "--idle", "60s", "--pin"},
         3,
         {"--pin needs the BPF filesystem", "mount -t bpf bpf /sys/fs/bpf"},
         true,
         kNobodyEnforce},
    };
}

} // namespace

TEST(EnvironmentFaults, EachFaultIsExitCodeAndAFixNotALoad) {
    RW_REQUIRE_BPF();
    if (access("/usr/sbin/capsh", X_OK) != 0) GTEST_SKIP() << "capsh (libcap2-bin) missing";
    const std::string patched = btf_without_tracepoint("tcp_send_reset");
    TestCgroup cg("env");
    for (const auto &c : env_cases(patched, cg.path())) {
        SCOPED_TRACE(c.name);
        std::vector<std::string> cmd;
        if (c.nobpf) cmd.push_back(helper_bin("rw_nobpf"));
        cmd.push_back(rstwatch_bin());
        cmd.insert(cmd.end(), c.args.begin(), c.args.end());
        std::string script = "set -e; " + c.setup + "; exec " + c.as + quote(cmd);
        Child child(
            {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script});
        child.read_all(20s);
        int status = child.wait(20s);
        std::string err = child.stderr_text();
        EXPECT_EQ(status, c.exit_code) << err;
        for (const auto &m : c.mentions)
            EXPECT_NE(err.find(m), std::string::npos) << "'" << m << "' not in: " << err;
        if (c.exit_code == 3) EXPECT_EQ(err.rfind("rstwatch: error: ", 0), 0u) << err;
        std::printf("[ info ] %s: exit %d %s", c.name.c_str(), status, err.c_str());
        if (err.empty() || err.back() != '\n') std::printf("\n");
    }
    unlink(patched.c_str());
    // The root run pinned into a bpffs that existed only in its namespace.
    EXPECT_EQ(sh("bpftool cgroup show " + cg.path() + " | wc -l"), "0\n");
}
