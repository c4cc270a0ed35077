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
    // libbpf sends hundreds of debug lines per load (one per CO-RE
    // relocation): not even formatted unless they are shown.
    if (level == LIBBPF_DEBUG && log_level() < LogLevel::debug) return 0;
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

namespace {

void clear_libbpf_warnings() {
    std::lock_guard<std::mutex> lock(g_warn_mu);
    g_warnings.clear();
}

std::vector<std::string> libbpf_warning_lines() {
    std::lock_guard<std::mutex> lock(g_warn_mu);
    return {g_warnings.begin(), g_warnings.end()};
}

} // namespace

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

// ---- optional programs ----

LoadFailure parse_load_failure(const std::vector<std::string> &log) {
    LoadFailure f;
    static const std::string_view kPrefix = "prog '", kSuffix = "': failed to load";
    std::size_t failed_at = log.size();
    for (std::size_t i = log.size(); i-- > 0;) {
        std::string_view l = log[i];
        auto p = l.find(kPrefix);
        if (p == l.npos) continue;
        auto q = l.find(kSuffix, p + kPrefix.size());
        if (q == l.npos) continue;
        f.program = std::string(l.substr(p + kPrefix.size(), q - p - kPrefix.size()));
        failed_at = i;
        break;
    }
    if (f.program.empty()) return f;
    // The verifier's log ends with its statistics; the line before them says why.
    auto trim = [](std::string_view l) {
        while (!l.empty() && (l.front() == ' ' || l.front() == '\t'))
            l.remove_prefix(1);
        while (!l.empty() && (l.back() == ' ' || l.back() == '\r'))
            l.remove_suffix(1);
        return l;
    };
    for (std::size_t i = failed_at; i-- > 0;) {
        std::string_view l = trim(log[i]);
        if (l.empty() || l.rfind("processed ", 0) == 0 || l.rfind("verification time", 0) == 0 ||
            l.rfind("stack depth", 0) == 0 || l.rfind("-- END PROG LOAD LOG", 0) == 0 ||
            l.rfind("libbpf: prog '" + f.program + "': -- END", 0) == 0)
            continue;
        if (l.rfind("-- BEGIN PROG LOAD LOG", 0) == 0 || l.find("-- BEGIN PROG LOAD LOG") != l.npos)
            break;
        if (l.rfind("libbpf: ", 0) == 0) l.remove_prefix(8);
        f.reason = std::string(l);
        break;
    }
    if (f.reason.empty()) f.reason = trim(log[failed_at]);
    return f;
}

namespace {

// RSTWATCH_TEST_REFUSE_PROGRAMS: the named programs are loaded as socket
// filters, which the kernel refuses for every program rstwatch has.
void refuse_for_tests(bpf_object *obj) {
    const char *env = std::getenv("RSTWATCH_TEST_REFUSE_PROGRAMS");
    if (!env || !*env) return;
    std::string list = std::string(",") + env + ",";
    bpf_program *p = nullptr;
    while ((p = bpf_object__next_program(obj, p)))
        if (list.find(std::string(",") + bpf_program__name(p) + ",") != std::string::npos)
            bpf_program__set_type(p, BPF_PROG_TYPE_SOCKET_FILTER);
}

} // namespace

std::vector<LeftOutProgram>
load_leaving_out(const std::function<bpf_object *(const std::vector<std::string> &)> &open,
                 const std::function<int()> &load, const std::vector<OptionalProgram> &optional,
                 std::string_view what) {
    std::vector<LeftOutProgram> left;
    std::vector<std::string> off;
    // Each round leaves out one more program, so this ends.
    for (;;) {
        bpf_object *obj = open(off);
        refuse_for_tests(obj);
        clear_libbpf_warnings();
        int err = load();
        if (!err) return left;
        LoadFailure f = parse_load_failure(libbpf_warning_lines());
        auto opt = std::find_if(optional.begin(), optional.end(),
                                [&](const OptionalProgram &o) { return o.name == f.program; });
        const bool again = std::find(off.begin(), off.end(), f.program) != off.end();
        if (f.program.empty() || opt == optional.end() || again)
            throw explain_load_failure(obj, what, err);
        const bpf_program *prog = bpf_object__find_program_by_name(obj, f.program.c_str());
        LeftOutProgram l{f.program, prog ? bpf_program__section_name(prog) : "", opt->lost,
                         f.reason};
        if (!l.lost.empty())
            log_warn("kernel " + kernel_release() + " refused the BPF program " + l.program + " (" +
                     l.section + "), left out: " + l.lost + ". The verifier said: " + l.reason);
        left.push_back(std::move(l));
        off.push_back(f.program);
    }
}

std::vector<ProgramStatus> program_statuses(const bpf_object *obj,
                                            const std::vector<OptionalProgram> &optional,
                                            const std::vector<LeftOutProgram> &left_out) {
    std::vector<ProgramStatus> out;
    bpf_program *p = nullptr;
    while ((p = bpf_object__next_program(obj, p))) {
        const std::string name = bpf_program__name(p);
        auto l = std::find_if(left_out.begin(), left_out.end(),
                              [&](const LeftOutProgram &x) { return x.program == name; });
        if (!bpf_program__autoload(p) && l == left_out.end()) continue; // not asked for
        auto o = std::find_if(optional.begin(), optional.end(),
                              [&](const OptionalProgram &x) { return x.name == name; });
        ProgramStatus st;
        st.program = name;
        st.section = bpf_program__section_name(p);
        st.essential = o == optional.end() || o->lost.empty();
        st.loaded = bpf_program__fd(p) >= 0;
        if (!st.loaded && l != left_out.end()) {
            st.lost = l->lost;
            st.reason = l->reason;
        }
        out.push_back(std::move(st));
    }
    return out;
}

} // namespace rstwatch
