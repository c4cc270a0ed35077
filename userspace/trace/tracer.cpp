#include "trace/tracer.hpp"

#include <algorithm>
#include <bpf/bpf.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf/caps.hpp"
#include "event/decode.hpp"
#include "util/cgroup_fs.hpp"
#include "util/log.hpp"
#include "bpf/maps.hpp"
#include "trace.skel.h"

namespace rstwatch {

std::string_view to_string(SockoptHook h) {
    switch (h) {
    case SockoptHook::cgroup:
        return "cgroup";
    case SockoptHook::syscall:
        return "syscall";
    case SockoptHook::none:
        break;
    }
    return "none";
}

namespace {

void set_prog(bpf_program *p, bool on) {
    bpf_program__set_autoload(p, on);
}

// 1 supported, 0 not; a probe that cannot run (<0) counts as supported so the
// real load reports the real error.
bool probe_ok(int r) {
    return r != 0;
}

// The ring buffer (5.8) is the one hard floor: every record travels through it.
void require_ringbuf(const std::string &release) {
    if (!probe_ok(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr)))
        throw EnvironmentError("kernel " + release +
                               " has no BPF ring buffer; rstwatch needs Linux 5.8 or later "
                               "(supported kernels: docs/kernels.md)");
}

} // namespace

Tracer::Tracer(const TracerConfig &cfg, unsigned hz_fallback) {
    install_libbpf_logging();
    require_btf();
    const std::string release = kernel_release();

    if (cfg.attach) {
        hook_ = (cfg.emit & RW_EMIT_KEEPALIVE) ? SockoptHook::syscall : cfg.sockopt_hook;
        if (hook_ == SockoptHook::cgroup && cgroup2_mount_point().empty()) {
            log_warn("no cgroup v2 mount: setsockopt calls are not tracked (keepalive state still "
                     "comes from each socket at reset time)");
            hook_ = SockoptHook::none;
        }
    }
    open_object(hz_fallback);
    configure(cfg, hz_fallback, {});

    // ---- check what loading needs, so a failure names it (exit 3, nothing loaded) ----
    // Before the feature probes below: they load programs too, and a missing
    // capability must be named before any bpf(2) call.
    require_caps(cfg.command, caps_for_programs(skel_->obj));
    require_tracepoints(skel_->obj, cfg.command);
    require_ringbuf(release);

    if (cfg.attach) {
        if (hook_ == SockoptHook::cgroup &&
            !probe_ok(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCKOPT, nullptr))) {
            log_warn("kernel " + release +
                     " has no cgroup/setsockopt programs: setsockopt calls are not tracked "
                     "(keepalive state still comes from each socket at reset time)");
            hook_ = SockoptHook::none;
        }
        if (hook_ == SockoptHook::cgroup && !prog_type_knows_caller(BPF_PROG_TYPE_CGROUP_SOCKOPT)) {
            log_warn("kernel " + release +
                     ": cgroup/setsockopt programs cannot call bpf_get_current_pid_tgid, so "
                     "keepalive options are credited to the socket's recorded owner and an "
                     "accepted socket keeps its listener's owner (--events keepalive names the "
                     "caller)");
            sockopt_caller_ = false;
        }
    }

    // ---- load, leaving out what this kernel refuses and the command can do without ----
    optional_ = optional_programs(cfg);
    bool first = true;
    auto load = [&] {
        return load_leaving_out(
            [&](const std::vector<std::string> &off) {
                if (!first) open_object(hz_fallback);
                first = false;
                configure(cfg, hz_fallback, off);
                return skel_->obj;
            },
            [&] { return trace_bpf::load(skel_.get()); }, optional_,
            "loading the trace BPF programs into the kernel");
    };
    left_out_ = load_trying_core_btf(core_btf_, load); // a retry reopens the object
    hz_ = checked_hz(*skel_, "BPF object");
    log_debug("trace BPF programs loaded");
    if (hook_ == SockoptHook::cgroup && bpf_program__fd(skel_->progs.rw_cgroup_setsockopt) < 0)
        hook_ = SockoptHook::none; // refused (warned by the loader)
    if (cfg.load_only) return;

    // ---- attach ----
    if (bpf_program__fd(skel_->progs.rw_iter_sockets) >= 0) {
        LinkPtr iter(bpf_program__attach_iter(skel_->progs.rw_iter_sockets, nullptr));
        if (!iter) throw bpf_failure("creating the socket iterator (iter/task_file)", errno);
        iter_link_ = std::move(iter);
    }
    if (cfg.attach) {
        attach_all(cfg);
        log_debug("trace BPF programs attached");
    }
}

void Tracer::cache_core_btf() {
    core_btf_writer_.start(skel_->obj, core_btf_.to_write());
}

void Tracer::open_object(unsigned hz_fallback) {
    // libbpf fills CONFIG_HZ (__kconfig) from the kernel config; without one,
    // the value measured from jiffies.
    skel_.reset();
    skel_ = open_skeleton<trace_bpf>(hz_fallback, "trace", &core_btf_);
}

void Tracer::configure(const TracerConfig &cfg, unsigned hz_fallback,
                       const std::vector<std::string> &left_out) {
    auto *ro = skel_->rodata;
    ro->cfg_emit = cfg.emit;
    ro->cfg_hz_fallback = hz_fallback ? hz_fallback : 250;
    ro->cfg_wakeup_bytes = cfg.wakeup_bytes ? cfg.wakeup_bytes : cfg.ringbuf_bytes / 4;
    ro->cfg_filter_pid = cfg.filter.pid;
    ro->cfg_filter_port = cfg.filter.port;
    ro->cfg_filter_netns = cfg.filter.netns;
    ro->cfg_filter_min_idle_ms = cfg.filter.min_idle_ms;
    ro->cfg_filter_cgroup_id = cfg.filter.cgroup_id;
    ro->cfg_filter_cgroup_level = cfg.filter.cgroup_level;
    ro->cfg_sockopt_caller = sockopt_caller_;
    if (!cfg.filter.comm.empty()) {
        ro->cfg_filter_comm_on = true;
        std::strncpy(const_cast<char *>(ro->cfg_filter_comm), cfg.filter.comm.c_str(),
                     RW_COMM_LEN - 1);
    }

    if (cfg.attach) {
        bpf_map__set_max_entries(skel_->maps.rw_events, cfg.ringbuf_bytes);
        bpf_map__set_max_entries(skel_->maps.rw_socks, cfg.max_sockets);
        bpf_map__set_max_entries(skel_->maps.rw_tuples, cfg.max_sockets);
        set_prog(skel_->progs.rw_cgroup_setsockopt, hook_ == SockoptHook::cgroup);
        set_prog(skel_->progs.rw_sys_enter_setsockopt, hook_ == SockoptHook::syscall);
        set_prog(skel_->progs.rw_sys_exit_setsockopt, hook_ == SockoptHook::syscall);
    } else {
        // Audit: only the iterator runs; keep every map minimal.
        bpf_map__set_max_entries(skel_->maps.rw_events, 4096);
        for (bpf_program *p = nullptr; (p = bpf_object__next_program(skel_->obj, p));)
            set_prog(p, p == skel_->progs.rw_iter_sockets);
    }
    for (const auto &name : left_out)
        if (bpf_program *p = bpf_object__find_program_by_name(skel_->obj, name.c_str()))
            set_prog(p, false);
}

std::vector<OptionalProgram> Tracer::optional_programs(const TracerConfig &cfg) const {
    std::vector<OptionalProgram> out;
    // Resets and the lifecycle (owners, timeouts) are what trace is; the
    // iterator is all that audit is.
    if (cfg.attach) {
        out.push_back({"rw_iter_sockets",
                       "owners of connections made before rstwatch started are unknown, and "
                       "audit records and end-of-session summaries list no open connections"});
        out.push_back({"rw_cgroup_setsockopt",
                       "setsockopt calls are not tracked (keepalive state still comes from each "
                       "socket at reset time)"});
    }
    if (cfg.load_only) {
        // `rstwatch verify`: every refusal is reported, none ends the run.
        for (bpf_program *p = nullptr; (p = bpf_object__next_program(skel_->obj, p));) {
            std::string name = bpf_program__name(p);
            if (std::none_of(out.begin(), out.end(),
                             [&](const OptionalProgram &o) { return o.name == name; }))
                out.push_back({name, ""}); // empty `lost`: essential
        }
    }
    return out;
}

std::vector<ProgramStatus> Tracer::program_statuses() const {
    return rstwatch::program_statuses(skel_->obj, optional_, left_out_);
}

Tracer::~Tracer() = default;

void Tracer::attach_all(const TracerConfig &) {
    // Lifecycle first, so that connections made while the scan runs get owners.
    const std::pair<bpf_program *, const char *> tps[] = {
        {skel_->progs.rw_inet_sock_set_state, "tp_btf/inet_sock_set_state"},
        {skel_->progs.rw_tcp_send_reset, "tp_btf/tcp_send_reset"},
        {skel_->progs.rw_tcp_receive_reset, "tp_btf/tcp_receive_reset"},
    };
    for (auto [prog, name] : tps) {
        LinkPtr l(bpf_program__attach(prog));
        if (!l) throw bpf_failure(std::string("attaching ") + name, errno);
        links_.push_back(std::move(l));
    }
    if (hook_ == SockoptHook::syscall) {
        for (auto *prog :
             {skel_->progs.rw_sys_enter_setsockopt, skel_->progs.rw_sys_exit_setsockopt}) {
            LinkPtr l(bpf_program__attach(prog));
            if (!l) throw bpf_failure("attaching the setsockopt syscall tracepoints", errno);
            links_.push_back(std::move(l));
        }
    } else if (hook_ == SockoptHook::cgroup) {
        std::string root = cgroup2_mount_point();
        cgroup_fd_ = UniqueFd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!cgroup_fd_)
            throw EnvironmentError("cannot open the cgroup v2 root " + root + ": " +
                                   std::strerror(errno));
        // A BPF link: multi-attach, so other programs on the root cgroup (and a
        // second rstwatch) keep working; the kernel detaches it if we die.
        LinkPtr l(bpf_program__attach_cgroup(skel_->progs.rw_cgroup_setsockopt, cgroup_fd_.get()));
        if (!l) {
            // Optional: resets are still traced and keepalive state read from each socket.
            log_warn("attaching cgroup/setsockopt to " + root + " failed (" + std::strerror(errno) +
                     "): setsockopt calls are not tracked (keepalive state still comes from "
                     "each socket at reset time)");
            hook_ = SockoptHook::none;
            return;
        }
        links_.push_back(std::move(l));
    }
}

std::size_t Tracer::scan(bool seed, const std::function<void(const rw_snapshot &)> &on_snapshot) {
    if (!iter_link_) return 0; // left out on this kernel (warned at load)
    skel_->bss->iter_seed = seed;
    skel_->bss->iter_snapshot = bool(on_snapshot);
    std::size_t sockets = 0;
    run_iterator(bpf_link__fd(iter_link_.get()), "socket", [&](const Record &r) {
        if (const auto *s = std::get_if<rw_snapshot>(&r)) {
            ++sockets;
            on_snapshot(*s);
        }
    });
    return on_snapshot ? sockets : 0;
}

void Tracer::open_ring_buffer(std::function<int(const void *, std::size_t)> on_sample) {
    ring_ = std::make_unique<RingReader>(bpf_map__fd(skel_->maps.rw_events), std::move(on_sample),
                                         "the trace ring buffer");
}

int Tracer::ring_epoll_fd() const {
    return ring_->epoll_fd();
}

int Tracer::consume() {
    return ring_ ? int(ring_->consume()) : 0;
}

std::size_t Tracer::consume(std::size_t budget) {
    return ring_ ? ring_->consume(budget) : 0;
}

Counters Tracer::counters() const {
    Counters c;
    sum_percpu_counters(bpf_map__fd(skel_->maps.rw_counters), c.v);
    return c;
}

std::vector<std::pair<std::uint32_t, rw_proc_stats>> Tracer::proc_stats() const {
    std::vector<std::pair<std::uint32_t, rw_proc_stats>> out;
    int fd = bpf_map__fd(skel_->maps.rw_proc_stats);
    std::uint32_t key = 0, next = 0;
    std::uint32_t *prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        rw_proc_stats v{};
        if (bpf_map_lookup_elem(fd, &next, &v) == 0) {
            v.comm[RW_COMM_LEN - 1] = '\0';
            out.emplace_back(next, v);
        }
        key = next;
        prev = &key;
    }
    return out;
}

std::vector<rw_sock_info>
Tracer::socks_not_in(const std::unordered_set<std::uint64_t> &held) const {
    std::vector<rw_sock_info> out;
    int fd = bpf_map__fd(skel_->maps.rw_socks);
    std::uint64_t key = 0, next = 0;
    std::uint64_t *prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        rw_sock_info v{};
        if (!held.count(next) && bpf_map_lookup_elem(fd, &next, &v) == 0) {
            v.owner.comm[RW_COMM_LEN - 1] = '\0';
            out.push_back(v);
        }
        key = next;
        prev = &key;
    }
    return out;
}

std::size_t Tracer::sock_entries() const {
    int fd = bpf_map__fd(skel_->maps.rw_socks);
    std::uint64_t key = 0, next = 0;
    std::uint64_t *prev = nullptr;
    std::size_t n = 0;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        ++n;
        key = next;
        prev = &key;
    }
    return n;
}

} // namespace rstwatch
