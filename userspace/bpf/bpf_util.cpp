#include "bpf/bpf_util.hpp"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
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
#include "util/log.hpp"

namespace rstwatch {

RingReader::RingReader(int map_fd, Callback cb, std::string_view what) : cb_(std::move(cb)) {
    ring_buffer *rb = ring_buffer__new(map_fd, sample, this, nullptr);
    if (!rb) throw bpf_failure("opening " + std::string(what), errno);
    rb_.reset(rb);
}

int RingReader::sample(void *ctx, void *data, std::size_t size) {
    auto *self = static_cast<RingReader *>(ctx);
    // No exception may cross libbpf's C frames: park it and stop consuming.
    try {
        int rc = self->cb_(data, size);
        ++self->handled_;
        // libbpf has already stepped past this sample: stopping loses nothing.
        if (rc >= 0 && self->budget_ && self->handled_ >= self->budget_) return -EAGAIN;
        return rc;
    } catch (...) {
        self->error_ = std::current_exception();
        return -ECANCELED;
    }
}

std::size_t RingReader::consume(std::size_t budget) {
    budget_ = budget;
    handled_ = 0;
    ring_buffer__consume(rb_.get());
    if (error_) {
        auto e = error_;
        error_ = nullptr;
        std::rethrow_exception(e);
    }
    return handled_;
}

namespace {

std::mutex g_warn_mu;
std::deque<std::string> g_warnings;

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args) try {
    // Sized to the message: a verifier log arrives as one message of many
    // lines, and its last lines say why the program was rejected.
    va_list copy;
    va_copy(copy, args);
    int n = vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return 0;
    std::string text(std::size_t(n) + 1, '\0');
    vsnprintf(text.data(), text.size(), fmt, args);
    text.resize(std::size_t(n));
    const char *buf = text.c_str();
    if (level == LIBBPF_DEBUG) {
        if (log_level() >= LogLevel::debug) log_debug(std::string("libbpf: ") + buf);
        return 0;
    }
    {
        std::lock_guard<std::mutex> lock(g_warn_mu);
        std::istringstream lines(buf);
        std::string line;
        while (std::getline(lines, line)) {
            g_warnings.push_back(line);
            if (g_warnings.size() > 400) g_warnings.pop_front();
        }
    }
    if (log_level() >= LogLevel::debug) log_debug(std::string("libbpf: ") + buf);
    return 0;
} catch (...) {
    return 0; // never throw through libbpf's C frames
}

} // namespace

void install_libbpf_logging() {
    libbpf_set_print(libbpf_print);
}

std::string libbpf_recent_warnings(std::size_t max_lines) {
    std::lock_guard<std::mutex> lock(g_warn_mu);
    std::string out;
    std::size_t start = g_warnings.size() > max_lines ? g_warnings.size() - max_lines : 0;
    for (std::size_t i = start; i < g_warnings.size(); ++i)
        out += "  " + g_warnings[i] + "\n";
    return out;
}

Error bpf_failure(std::string_view what, int err) {
    if (err < 0) err = -err;
    std::string msg = std::string(what) + " failed: " + std::strerror(err) + ".";
    switch (err) {
    case EPERM:
    case EACCES: {
        // The commands check their capabilities before loading (require_caps), so
        // an EPERM here usually comes from something capabilities do not show.
        // EACCES is the verifier's or a file's answer, not a capability's.
        auto miss = err == EPERM ? missing_caps(effective_caps(),
                                                {{Cap::bpf, "BPF"}, {Cap::perfmon, "tracing"}})
                                 : std::vector<CapNeed>{};
        if (err == EACCES) {
            msg += " A pinned object or file only root may open, or the verifier refused a "
                   "program (see libbpf's message below).";
        } else if (!miss.empty()) {
            msg += " The process is missing";
            for (const auto &m : miss)
                msg += " " + cap_name(m.cap);
            msg += ": run as root or grant the capabilities in docs/security.md.";
        } else if (!in_initial_user_namespace()) {
            msg += " rstwatch runs in a user namespace: capabilities there do not allow BPF. "
                   "Run it in the host's initial user namespace (a privileged container).";
        } else {
            msg += " The process has CAP_BPF and CAP_PERFMON, so a security policy refused it: "
                   "check the kernel lockdown mode (/sys/kernel/security/lockdown), SELinux/"
                   "AppArmor/BPF-LSM policy, and kernel.unprivileged_bpf_disabled.";
        }
        if (!libbpf_recent_warnings(1).empty())
            msg += "\nlibbpf said:\n" + libbpf_recent_warnings(8);
        return EnvironmentError(msg);
    }
    case ENOENT:
    case ESRCH:
    case EOPNOTSUPP:
    case EINVAL:
        msg += " The running kernel lacks a tracepoint, helper or BTF type rstwatch needs "
               "(supported kernels: docs/kernels.md).";
        msg += "\nlibbpf said:\n" + libbpf_recent_warnings();
        return EnvironmentError(msg);
    case ENOMEM:
    case E2BIG:
        msg += " Try a smaller --ringbuf-size, or raise the locked-memory limit (ulimit -l).";
        return EnvironmentError(msg);
    default:
        msg += "\nlibbpf said:\n" + libbpf_recent_warnings();
        return Error(Exit::runtime, msg);
    }
}

namespace {

constexpr const char *kVmlinuxBtf = "/sys/kernel/btf/vmlinux";
constexpr const char *kBtfFix =
    "rstwatch's CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, "
    "Ubuntu, Fedora and RHEL kernels since 2021 are); boot such a kernel, or install your "
    "distribution's kernel package";

} // namespace

void require_btf() {
    struct stat st {};
    if (stat(kVmlinuxBtf, &st) != 0)
        throw EnvironmentError(std::string("no kernel BTF at ") + kVmlinuxBtf + " (" +
                               std::strerror(errno) + "): " + kBtfFix);
    if (access(kVmlinuxBtf, R_OK) != 0)
        throw EnvironmentError(std::string("cannot read the kernel BTF at ") + kVmlinuxBtf + " (" +
                               std::strerror(errno) + "): run rstwatch as root");
    // sysfs reports size 4096 for most files but the real size for this one.
    if (st.st_size == 0)
        throw EnvironmentError(std::string("the kernel BTF at ") + kVmlinuxBtf +
                               " is empty: " + kBtfFix);
}

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

namespace {

bool kernel_config_readable(const std::string &release) {
    return access(("/boot/config-" + release).c_str(), R_OK) == 0 ||
           access("/proc/config.gz", R_OK) == 0;
}

std::optional<unsigned long long> read_jiffies() {
    std::ifstream in("/proc/timer_list");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("jiffies: ", 0) == 0) return std::stoull(line.substr(9));
    return std::nullopt;
}

// CONFIG_HZ for kernels without a readable config: from where jiffies stands
// (exact, see hz_from_jiffies), else from the jiffies rate over 100 ms, which
// a loaded VM can skew by a fifth (250 read as 300).
unsigned measure_hz() {
    if (auto j = read_jiffies()) {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (auto hz = hz_from_jiffies(*j, double(ts.tv_sec) + double(ts.tv_nsec) / 1e9)) return *hz;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto j0 = read_jiffies();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto j1 = read_jiffies();
    auto t1 = std::chrono::steady_clock::now();
    if (!j0 || !j1) return 250;
    double secs = std::chrono::duration<double>(t1 - t0).count();
    double rate = double(*j1 - *j0) / secs;
    unsigned best = 250;
    for (unsigned hz : {100u, 250u, 300u, 1000u})
        if (std::fabs(rate - hz) < std::fabs(rate - best)) best = hz;
    return best;
}

} // namespace

std::string kernel_release() {
    utsname u{};
    uname(&u);
    return u.release;
}

namespace {

// Loads `call fn; r0 = 1; exit` as a program of `type`. libbpf 1.1's
// libbpf_probe_bpf_helper() knows only the "invalid func" and "unknown func"
// refusals; newer kernels say "program of this type cannot use helper" (6.12
// does so for bpf_get_current_uid_gid in sockops). Any other verifier complaint
// comes after the helper was accepted. A load that cannot even be tried counts
// as supported, so the real load reports the real error.
bool prog_type_allows_helper(bpf_prog_type type, bpf_attach_type expected, bpf_func_id fn) {
    bpf_insn insns[3] = {};
    insns[0].code = BPF_JMP | BPF_CALL;
    insns[0].imm = fn;
    insns[1].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[1].dst_reg = BPF_REG_0;
    insns[1].imm = 1;
    insns[2].code = BPF_JMP | BPF_EXIT;
    char log[4096] = "";
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = expected, .log_level = 1,
                .log_size = sizeof(log), .log_buf = log);
    int fd = bpf_prog_load(type, nullptr, "GPL", insns, 3, &opts);
    if (fd >= 0) {
        close(fd);
        return true;
    }
    std::string_view v(log);
    return v.find("invalid func ") == v.npos && v.find("unknown func ") == v.npos &&
           v.find("cannot use helper") == v.npos;
}

} // namespace

bool prog_type_knows_caller(bpf_prog_type type) {
    const bpf_attach_type expected =
        type == BPF_PROG_TYPE_CGROUP_SOCKOPT ? BPF_CGROUP_SETSOCKOPT : bpf_attach_type(0);
    for (auto fn :
         {BPF_FUNC_get_current_pid_tgid, BPF_FUNC_get_current_uid_gid, BPF_FUNC_get_current_comm})
        if (!prog_type_allows_helper(type, expected, fn)) return false;
    return true;
}

bool kernel_knows_helper(const char *name) {
    btf *vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return true; // the load will say what is wrong
    std::unique_ptr<btf, void (*)(btf *)> guard(vmlinux, btf__free);
    int id = btf__find_by_name_kind(vmlinux, "bpf_func_id", BTF_KIND_ENUM);
    if (id <= 0) return true;
    const btf_type *t = btf__type_by_id(vmlinux, id);
    const struct btf_enum *e = ::btf_enum(t);
    const std::string want = std::string("BPF_FUNC_") + name;
    for (unsigned i = 0; i < btf_vlen(t); ++i)
        if (want == btf__name_by_offset(vmlinux, e[i].name_off)) return true;
    return false;
}

std::string kconfig_for(unsigned hz_fallback) {
    if (!hz_fallback) return {};
    log_debug("no readable kernel config: CONFIG_HZ=" + std::to_string(hz_fallback) +
              " measured from jiffies");
    return "CONFIG_HZ=" + std::to_string(hz_fallback) + "\n";
}

std::optional<unsigned> hz_from_jiffies(std::uint64_t jiffies, double monotonic_s) {
    // jiffies starts at INITIAL_JIFFIES = (unsigned int)(-300 * HZ) and counts HZ
    // ticks per second of CLOCK_MONOTONIC from boot.
    unsigned best = 0;
    double best_err = 1e300, next_err = 1e300;
    for (unsigned hz : {100u, 250u, 300u, 1000u}) {
        double predicted = 4294967296.0 + (monotonic_s - 300.0) * hz;
        double err = std::fabs(double(jiffies) - predicted);
        if (err < best_err) {
            next_err = best_err;
            best_err = err;
            best = hz;
        } else if (err < next_err) {
            next_err = err;
        }
    }
    // Within a second of its prediction (ticks start a little after boot, and a
    // starved CPU lags), while the runner-up is more than 3 s of ticks off. Near
    // 300 s of uptime every candidate predicts about the same value: undecided.
    if (best_err > best || next_err < 3.0 * best) return std::nullopt;
    return best;
}

namespace {

void add_reason_name(KernelFacts &k, std::string name, std::int64_t val) {
    if (name.rfind("SK_RST_REASON_", 0) == 0) name = name.substr(14);
    if (val < 0 || val >= 4096) return;
    if (k.rst_reason_names.size() <= std::size_t(val))
        k.rst_reason_names.resize(std::size_t(val) + 1);
    k.rst_reason_names[std::size_t(val)] = std::move(name);
}

// The same facts through libbpf's full parse, for BTF the scanner rejects.
void probe_with_libbpf(KernelFacts &k) {
    btf *vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux)
        throw EnvironmentError(std::string("cannot parse the kernel BTF at ") + kVmlinuxBtf + " (" +
                               std::strerror(errno) + "): " + kBtfFix);
    std::unique_ptr<btf, void (*)(btf *)> guard(vmlinux, btf__free);
    int eid = btf__find_by_name_kind(vmlinux, "sk_rst_reason", BTF_KIND_ENUM);
    k.rst_reason_arg = eid > 0;
    if (eid <= 0) return;
    const btf_type *t = btf__type_by_id(vmlinux, eid);
    const struct btf_enum *e = ::btf_enum(t);
    for (unsigned i = 0; i < btf_vlen(t); ++i)
        add_reason_name(k, btf__name_by_offset(vmlinux, e[i].name_off), e[i].val);
}

} // namespace

KernelFacts probe_kernel() {
    require_btf();
    KernelFacts k;
    utsname u{};
    uname(&u);
    k.release = u.release;

    // tcp_send_reset gained its `enum sk_rst_reason` argument together with
    // the enum (6.10), and the BPF side reads the argument exactly when the
    // enum exists (bpf_core_type_exists): the same test here. The BTF is read
    // through a 64 KiB window: libbpf parses all of it for the load at the
    // same time, and a second full parse would double the start-up peak RSS.
    BtfEnumScan scan = scan_btf_enum_file(kVmlinuxBtf, "sk_rst_reason");
    if (!scan.ok) {
        log_debug("BTF scan: " + scan.why + "; parsing the kernel BTF with libbpf instead");
        probe_with_libbpf(k);
        return k;
    }
    k.rst_reason_arg = scan.found;
    for (auto &[name, val] : scan.values)
        add_reason_name(k, name, val);
    return k;
}

unsigned hz_fallback() {
    utsname u{};
    uname(&u);
    return kernel_config_readable(u.release) ? 0 : measure_hz();
}

} // namespace rstwatch
