// RAII owners for libbpf objects, libbpf logging, and turning libbpf failures
// into errors a user can act on.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <bpf/libbpf.h>
#include <cerrno>

#include "bpf/caps.hpp"
#include "bpf/core_btf.hpp"
#include "event/kernel_facts.hpp"
#include "event/left_out.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "rstwatch/records.h"

namespace rstwatch {

struct LinkDeleter {
    void operator()(bpf_link *l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct RingBufferDeleter {
    void operator()(ring_buffer *rb) const { ring_buffer__free(rb); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

// A skeleton owned by unique_ptr; Skel is the bpftool-generated struct, whose
// static destroy() frees the object, its maps, programs and links.
template <class Skel> struct SkelDeleter {
    void operator()(Skel *s) const { Skel::destroy(s); }
};
template <class Skel> using SkelPtr = std::unique_ptr<Skel, SkelDeleter<Skel>>;

// A libbpf ring buffer with a C++ callback (returning <0 stops the current
// consume early). No exception may cross libbpf's C frames: one thrown by the
// callback is parked, consuming stops, and consume() rethrows it. Not movable:
// libbpf keeps a pointer to it.
class RingReader {
  public:
    using Callback = std::function<int(const void *, std::size_t)>;
    // `what` names the buffer in errors ("the trace ring buffer").
    RingReader(int map_fd, Callback cb, std::string_view what);
    RingReader(const RingReader &) = delete;
    RingReader &operator=(const RingReader &) = delete;
    int epoll_fd() const { return ring_buffer__epoll_fd(rb_.get()); }
    // Drains at most `budget` records (0: everything available); returns how
    // many were handled, or rethrows what the callback threw. A budget keeps a
    // flood from starving the caller's event loop (signals, deadlines).
    std::size_t consume(std::size_t budget = 0);

  private:
    static int sample(void *ctx, void *data, std::size_t size);
    Callback cb_;
    std::exception_ptr error_;
    std::size_t budget_ = 0, handled_ = 0;
    RingBufferPtr rb_;
};

// Routes libbpf's messages through our logger: debug output only with
// --verbose; warnings are kept so a load failure can quote the verifier.
void install_libbpf_logging();
// The last libbpf warnings (verifier log tail), for error messages.
std::string libbpf_recent_warnings(std::size_t max_lines = 25);

// Maps a failed libbpf call (negative errno) to an Error that says what failed
// and how to fix it. `what` names the step: "loading BPF programs", ...
Error bpf_failure(std::string_view what, int err);

// A program a command can do without, and what the user loses when the running
// kernel refuses it ("owners of connections made before enforcement").
struct OptionalProgram {
    std::string name;
    std::string lost;
};

// Loads a BPF object, leaving out the optional programs the running kernel
// refuses, so that one optional program cannot take a whole command down when a
// kernel update makes the verifier stricter. `open` (re)opens and configures the
// object with the autoload of the named programs off and returns it; `load`
// loads it. A failed load cannot be retried on the same object, so each refusal
// costs one reopen (only on kernels that refuse something). An essential program
// or anything else failing throws explain_load_failure(obj, what, err). Each
// program left out is warned about once, naming what is lost and why.
//
// RSTWATCH_TEST_REFUSE_PROGRAMS=name,... makes the kernel refuse the named
// programs (they are loaded as the wrong program type): for tests of this path.
std::vector<LeftOutProgram>
load_leaving_out(const std::function<bpf_object *(const std::vector<std::string> &left_out)> &open,
                 const std::function<int()> &load, const std::vector<OptionalProgram> &optional,
                 std::string_view what);

// Every program of `obj` that was asked for (autoload on, or left out), with
// its fate. A program is essential unless `optional` lists it with what is lost.
std::vector<ProgramStatus> program_statuses(const bpf_object *obj,
                                            const std::vector<OptionalProgram> &optional,
                                            const std::vector<LeftOutProgram> &left_out);

// The program named in libbpf's "prog 'NAME': failed to load" among `log`'s
// lines, and the verifier's reason (the last line of its log that is not a
// statistic); empty when the log names none. Pure: unit-tested on real logs.
struct LoadFailure {
    std::string program;
    std::string reason;
};
LoadFailure parse_load_failure(const std::vector<std::string> &log);

// Checks that BPF can work at all (BTF present); throws EnvironmentError.
void require_btf();

// The capabilities loading the autoload programs of `obj` needs, as the kernel's
// bpf_prog_load() checks them: CAP_BPF always, CAP_PERFMON for tracing program
// types, CAP_NET_ADMIN for networking/cgroup types; and CAP_DAC_READ_SEARCH for
// classic tracepoints when not root (tracefs is root's). Each names its programs.
std::vector<CapNeed> caps_for_programs(const bpf_object *obj);

// Checks, before loading, that tracefs is there (mounting it if need be and
// allowed) and has the events entry of every classic tracepoint/<cat>/<name>
// the autoload programs of `obj` attach to. Throws EnvironmentError naming the
// tracepoint, or the capability reading or mounting tracefs needs, and the fix.
void require_tracepoints(const bpf_object *obj, std::string_view command);

// For a failed load of `obj`: names a tp_btf tracepoint the running kernel
// lacks (its BTF has no btf_trace_<name>) if that is the cause, else the same
// as bpf_failure(what, err).
Error explain_load_failure(const bpf_object *obj, std::string_view what, int err);

// What the running kernel's BTF says (event/kernel_facts.hpp). Throws
// EnvironmentError without BTF.
KernelFacts probe_kernel();

// CONFIG_HZ for jiffies conversions when libbpf cannot read the kernel config
// (no /proc/config.gz, no /boot/config-$(uname -r)): measured from the jiffies
// rate. 0 when the config is readable (libbpf resolves CONFIG_HZ itself).
unsigned hz_fallback();

// The running kernel's release (uname -r).
std::string kernel_release();

// Whether programs of `type` may call bpf_get_current_pid_tgid, _uid_gid and
// _comm, i.e. name the task they run for. Networking program types gained them
// late: cgroup/setsockopt not on 5.10, sockops not even on 6.12 (_uid_gid).
bool prog_type_knows_caller(bpf_prog_type type);

// Whether the running kernel has the BPF helper BPF_FUNC_<name> at all (its BTF
// `enum bpf_func_id`), e.g. "sock_from_file" (5.11).
bool kernel_knows_helper(const char *name);

// bpf_object_open_opts.kconfig for a kernel whose config libbpf cannot read
// (without one libbpf refuses to load any __kconfig extern, even a weak one):
// "CONFIG_HZ=<hz_fallback>"; empty when hz_fallback is 0 (config readable).
std::string kconfig_for(unsigned hz_fallback);

// The two ends of a skeleton's load, the same for every object: open with
// kconfig_for(hz_fallback) handed to libbpf ("opening the <what> BPF object"
// on failure), and after the load check that the object was built with this
// rstwatch's record layout and return the CONFIG_HZ it runs with (libbpf's
// __kconfig value, else the fallback configured in rodata).
//
// With `core`, CO-RE runs against this boot's cached minimal BTF of the object
// when there is a trusted one and no earlier load refused it (bpf/core_btf.hpp).
template <class Skel>
SkelPtr<Skel> open_skeleton(unsigned hz_fallback, std::string_view what,
                            CoreBtfChoice *core = nullptr) {
    const std::string kconfig = kconfig_for(hz_fallback);
    LIBBPF_OPTS(bpf_object_open_opts, open_opts);
    if (!kconfig.empty()) open_opts.kconfig = kconfig.c_str();
    if (core) {
        core->used = false;
        if (!core->refused) {
            std::size_t elf_size = 0;
            const void *elf = Skel::elf_bytes(&elf_size);
            core->path = core_btf_path(what, elf, elf_size);
            core->used = core_btf_usable(core->path);
        }
        if (core->used) {
            open_opts.btf_custom_path = core->path.c_str();
            log_debug("CO-RE relocation against " + core->path);
        }
    }
    Skel *raw = Skel::open(&open_opts);
    if (!raw) throw bpf_failure("opening the " + std::string(what) + " BPF object", errno);
    return SkelPtr<Skel>(raw);
}
// `object` names it in the error ("enforce BPF object and rstwatch disagree ...").
template <class Skel> unsigned checked_hz(const Skel &skel, std::string_view object) {
    if (skel.rodata->rw_abi_version != RW_ABI_VERSION)
        throw Error(Exit::runtime,
                    std::string(object) + " and rstwatch disagree on the record layout");
    return skel.kconfig && skel.kconfig->CONFIG_HZ ? unsigned(skel.kconfig->CONFIG_HZ)
                                                   : skel.rodata->cfg_hz_fallback;
}

// CONFIG_HZ (100, 250, 300 or 1000) that explains the kernel's jiffies counter
// at `monotonic_s` seconds of CLOCK_MONOTONIC; nullopt when it cannot tell
// (uptime near 300 s, where every candidate predicts the same value).
std::optional<unsigned> hz_from_jiffies(std::uint64_t jiffies, double monotonic_s);

} // namespace rstwatch
