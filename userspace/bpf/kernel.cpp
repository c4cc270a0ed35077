// What the running kernel has: BTF, its release, CONFIG_HZ, BPF helpers per
// program type, sk_rst_reason names.
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
