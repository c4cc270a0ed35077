// rstwatch doctor: gathers the facts of each network namespace to check (its
// sysctls through /proc/sys, which shows the reading task's namespace; the
// host's sysctl.d files; with privileges, its connections from the BPF socket
// iterator) and prints one doctor_check record per check.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpf/bpf_util.hpp"
#include "util/clock.hpp"
#include "cmd/commands.hpp"
#include "doctor/doctor.hpp"
#include "util/cgroup_fs.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "output/setup.hpp"
#include "trace/rollup.hpp"
#include "trace/tracer.hpp"

namespace rstwatch {

namespace {

namespace fs = std::filesystem;
using namespace doctor;

// "net:[4026531840]" -> 4026531840 (0 when unreadable: not root, or absent).
std::uint32_t netns_of_link(const fs::path &p) {
    char buf[64] = {};
    ssize_t n = readlink(p.c_str(), buf, sizeof(buf) - 1);
    if (n <= 0) return 0;
    std::string s(buf, std::size_t(n));
    auto l = s.find('['), r = s.find(']');
    if (s.rfind("net:", 0) != 0 || l == std::string::npos || r == std::string::npos) return 0;
    try {
        return std::uint32_t(std::stoul(s.substr(l + 1, r - l - 1)));
    } catch (...) {
        return 0;
    }
}

fs::path under(const std::string &root, const std::string &path) {
    if (root.empty() || root == "/") return path;
    return fs::path(root) / fs::path(path).relative_path();
}

// The host's (initial) network namespace: pid 1's, or kthreadd's where pid 1
// cannot be inspected (no CAP_SYS_PTRACE over it); kernel threads live in the
// initial namespace. 0 when neither is readable.
std::uint32_t host_netns_inode(const std::string &root) {
    if (std::uint32_t ino = netns_of_link(under(root, "/proc/1/ns/net"))) return ino;
    std::ifstream comm(under(root, "/proc/2/comm"));
    std::string name;
    if (comm >> name && name == "kthreadd") return netns_of_link(under(root, "/proc/2/ns/net"));
    return 0;
}

struct Target {
    std::uint32_t netns = 0;
    std::string name;      // `ip netns` name
    std::uint32_t pid = 0; // a process inside (for nsenter and setns)
    std::string ns_path;   // what to setns() to; empty: the current namespace
};

// `ip netns` names by namespace inode.
std::map<std::uint32_t, std::string> named_netns(const std::string &root) {
    std::map<std::uint32_t, std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(under(root, "/run/netns"), ec), end; !ec && it != end;
         it.increment(ec)) {
        struct stat st {};
        if (stat(it->path().c_str(), &st) == 0)
            out.emplace(std::uint32_t(st.st_ino), it->path().filename());
    }
    return out;
}

// Every namespace worth checking: named ones and those of running processes.
std::vector<Target> all_targets(std::uint32_t self,
                                const std::map<std::uint32_t, std::string> &names) {
    std::map<std::uint32_t, Target> by_ns;
    by_ns[self] = Target{self, {}, 0, {}};
    for (auto &[ino, name] : names)
        by_ns.emplace(ino, Target{ino, name, 0, "/run/netns/" + name});
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        std::string pid = it->path().filename();
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        std::uint32_t ino = netns_of_link(it->path() / "ns/net");
        if (!ino) continue;
        auto [t, fresh] = by_ns.emplace(ino, Target{ino, {}, 0, {}});
        if (!t->second.pid) {
            t->second.pid = std::uint32_t(std::stoul(pid));
            if (t->second.ns_path.empty() && ino != self)
                t->second.ns_path = "/proc/" + pid + "/ns/net";
        }
        (void)fresh;
    }
    std::vector<Target> out;
    out.push_back(by_ns[self]);
    for (auto &[ino, t] : by_ns)
        if (ino != self) out.push_back(t);
    return out;
}

// The sysctls of another namespace: a child joins it and reads /proc/sys.
NetnsFacts facts_in(const std::string &ns_path) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        throw Error(Exit::runtime, std::string("pipe: ") + std::strerror(errno));
    pid_t child = fork();
    if (child < 0) throw Error(Exit::runtime, std::string("fork: ") + std::strerror(errno));
    if (child == 0) {
        close(p[0]);
        int fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(3);
        NetnsFacts f = read_netns_facts("/");
        std::int64_t v[8] = {f.keepalive_time.value_or(-1),   f.keepalive_intvl.value_or(-1),
                             f.keepalive_probes.value_or(-1), f.conntrack_loaded,
                             f.ct_established.value_or(-1),   f.ct_count.value_or(-1),
                             f.ct_max.value_or(-1),           0};
        ssize_t n = write(p[1], v, sizeof(v));
        _exit(n == ssize_t(sizeof(v)) ? 0 : 4);
    }
    close(p[1]);
    std::int64_t v[8] = {};
    ssize_t got = 0;
    while (got < ssize_t(sizeof(v))) {
        ssize_t n = read(p[0], reinterpret_cast<char *>(v) + got, sizeof(v) - std::size_t(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += n;
    }
    close(p[0]);
    int st = 0;
    waitpid(child, &st, 0);
    if (got != ssize_t(sizeof(v)))
        throw Error(Exit::environment, "could not enter network namespace " + ns_path +
                                           " (needs CAP_SYS_ADMIN: run as root)");
    auto opt = [](std::int64_t x) { return x < 0 ? std::nullopt : std::optional<std::int64_t>(x); };
    NetnsFacts f;
    f.keepalive_time = opt(v[0]);
    f.keepalive_intvl = opt(v[1]);
    f.keepalive_probes = opt(v[2]);
    f.conntrack_loaded = v[3] != 0;
    f.ct_established = opt(v[4]);
    f.ct_count = opt(v[5]);
    f.ct_max = opt(v[6]);
    return f;
}

// Current connections of every namespace, or why they cannot be listed.
struct SocketScan {
    std::vector<rw_snapshot> snap;
    std::string skipped; // non-empty: why the privileged check did not run
};

SocketScan scan_sockets(const DoctorOptions &o) {
    SocketScan s;
    if (!o.root.empty() && o.root != "/") {
        s.skipped = "--root checks a copy of a system's files, which has no live connections";
        return s;
    }
    // The socket iterator needs CAP_BPF and CAP_PERFMON, not root: the Tracer's
    // own check says which is missing, and that becomes the skip reason.
    try {
        TracerConfig tc;
        tc.attach = false;
        tc.command = "rstwatch doctor";
        Tracer tracer(tc, hz_fallback());
        tracer.scan(false, [&s](const rw_snapshot &r) { s.snap.push_back(r); });
    } catch (const Error &e) {
        s.skipped = e.what();
    }
    return s;
}

} // namespace

int run_doctor(const DoctorOptions &o) {
    signal(SIGPIPE, SIG_IGN);
    auto sink = make_sink(o.out);
    const std::string host = host_name();
    const bool fake_root = !o.root.empty() && o.root != "/";

    const std::uint32_t self = netns_of_link(under(o.root, "/proc/self/ns/net"));
    const std::uint32_t init = host_netns_inode(o.root);
    auto names = named_netns(o.root);
    // Without a readable host namespace, an `ip netns` name is the sign of a
    // namespace that is not the host's.
    auto is_host = [&](std::uint32_t ns) { return init ? ns == init : !names.count(ns); };

    std::vector<Target> targets;
    if (o.all_netns) {
        if (fake_root) throw UsageError("--all-netns cannot be combined with --root");
        if (geteuid() != 0)
            throw EnvironmentError("--all-netns enters other network namespaces: run as root");
        targets = all_targets(self, names);
    } else {
        Target t{self, {}, std::uint32_t(getpid()), {}};
        if (auto it = names.find(self); it != names.end()) t.name = it->second;
        targets.push_back(t);
    }

    const auto persisted = persisted_sysctls(o.root);
    SocketScan sockets = scan_sockets(o);
    const std::int64_t ts = WallClock::real_now_ns();

    std::vector<Check> all;
    std::string out;
    for (const auto &t : targets) {
        Context ctx;
        ctx.middlebox_timeout = o.middlebox_timeout;
        ctx.host_netns = is_host(t.netns);
        ctx.netns_name = t.name;
        ctx.netns = t.netns;
        ctx.holder_pid = t.pid;
        NetnsFacts facts = t.ns_path.empty() ? read_netns_facts(o.root) : facts_in(t.ns_path);

        std::vector<Check> checks = sysctl_checks(facts, persisted, ctx);
        if (!sockets.skipped.empty()) {
            checks.push_back(connections_skipped(sockets.skipped));
        } else {
            FilterOptions filter;
            filter.netns = t.netns;
            auto bound = timeout_bound(facts, ctx);
            std::optional<std::chrono::milliseconds> risk_against;
            if (bound)
                risk_against = std::chrono::duration_cast<std::chrono::milliseconds>(bound->value);
            AuditResult audit = build_audit(sockets.snap, filter, risk_against, ts);
            checks.push_back(connections_check(audit, bound, facts, ctx));
        }

        Scope scope{t.netns, t.name};
        if (o.out.format == Format::text) {
            bool color = o.out.color == Color::always ||
                         (o.out.color == Color::auto_ && sink->is_tty() && !getenv("NO_COLOR"));
            if (!out.empty()) out += "\n";
            append_text(out, checks, scope, host, color);
        } else {
            for (const auto &c : checks)
                append_json(out, c, scope, ts, host);
        }
        all.insert(all.end(), checks.begin(), checks.end());
    }
    sink->write(out);
    return exit_code(all);
}

} // namespace rstwatch
