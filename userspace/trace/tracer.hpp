// The trace BPF object: open -> configure -> load -> attach, the start-up scan
// that seeds socket owners, the socket iterator behind `audit`, the ring buffer
// and the counters. Owns every libbpf object it creates (RAII).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <unordered_set>
#include <vector>

#include "bpf/bpf_util.hpp"
#include "rstwatch/records.h"

struct trace_bpf;

namespace rstwatch {

// Filters evaluated in the kernel, before the ring buffer (0 / empty = off).
struct KernelFilter {
    std::uint32_t pid = 0;
    std::string comm;
    std::uint16_t port = 0;
    std::uint32_t netns = 0;
    std::uint64_t cgroup_id = 0;
    int cgroup_level = -1;
    std::uint32_t min_idle_ms = 0;
};

enum class SockoptHook { none, cgroup, syscall };
std::string_view to_string(SockoptHook h);

struct TracerConfig {
    std::uint32_t emit = RW_EMIT_RESET | RW_EMIT_TIMEOUT; // RW_EMIT_*
    KernelFilter filter;
    std::uint32_t ringbuf_bytes = 4u << 20;
    // The BPF side wakes userspace only past this fill level (default: a
    // quarter of the ring); below it userspace drains every kDrainInterval.
    std::uint32_t wakeup_bytes = 0;
    std::uint32_t max_sockets = 65536;
    // false: load only the socket iterator (rstwatch audit); nothing is attached.
    bool attach = true;
    // Which setsockopt hook; `syscall` is forced when keepalive events are wanted.
    SockoptHook sockopt_hook = SockoptHook::cgroup;
    // Load the programs and attach nothing (`rstwatch verify`); every refused
    // program is recorded instead of ending the load.
    bool load_only = false;
    // For messages: "rstwatch trace is missing CAP_BPF ...".
    std::string command = "rstwatch trace";
};

// Longest a queued event waits before userspace drains it without a wakeup.
inline constexpr std::uint64_t kDrainIntervalNs = 50'000'000;

struct Counters {
    std::array<std::uint64_t, RW_CNT_MAX> v{};
    std::uint64_t lost() const {
        return v[RW_CNT_LOST_RESET] + v[RW_CNT_LOST_SOCKOPT] + v[RW_CNT_LOST_CLOSE] +
               v[RW_CNT_LOST_ENFORCE];
    }
};

class Tracer {
  public:
    // hz_fallback: see hz_fallback() in bpf_util.hpp (0: libbpf reads CONFIG_HZ).
    Tracer(const TracerConfig &cfg, unsigned hz_fallback);
    ~Tracer();
    Tracer(const Tracer &) = delete;
    Tracer &operator=(const Tracer &) = delete;

    // Runs the socket iterator once. seed: record owners of existing sockets in
    // the kernel maps; on_snapshot (if set) receives one record per (process, fd).
    // Returns the number of TCP sockets seen.
    std::size_t scan(bool seed, const std::function<void(const rw_snapshot &)> &on_snapshot);

    // Ring buffer. on_sample returns <0 to stop the current consume() early.
    void open_ring_buffer(std::function<int(const void *, std::size_t)> on_sample);
    int ring_epoll_fd() const;
    // Drains everything available; rethrows an exception raised by on_sample.
    int consume();

    // Drains at most `budget` samples (0: everything available); returns how many
    // were handled. A flood must not keep the event loop from seeing signals.
    std::size_t consume(std::size_t budget);

    Counters counters() const;
    std::vector<std::pair<std::uint32_t, rw_proc_stats>> proc_stats() const;
    std::size_t sock_entries() const;
    // rw_socks entries whose socket is not in `held` (sock_id of sockets some
    // fd still refers to): connections closed by their owner, still closing.
    std::vector<rw_sock_info> socks_not_in(const std::unordered_set<std::uint64_t> &held) const;
    unsigned hz() const { return hz_; }
    SockoptHook sockopt_hook() const { return hook_; }

    // Optional programs the running kernel refused (see load_leaving_out).
    const std::vector<LeftOutProgram> &left_out() const { return left_out_; }
    // After the session started: caches this boot's minimal kernel BTF for the
    // next start if it was not there (bpf/core_btf.hpp).
    void cache_core_btf();
    // Every program of the object this configuration asked for, and its fate.
    std::vector<ProgramStatus> program_statuses() const;

  private:
    void open_object(unsigned hz_fallback);
    void configure(const TracerConfig &cfg, unsigned hz_fallback,
                   const std::vector<std::string> &left_out);
    std::vector<OptionalProgram> optional_programs(const TracerConfig &cfg) const;
    void attach_all(const TracerConfig &cfg);

    CoreBtfChoice core_btf_;
    CoreBtfWriter core_btf_writer_;
    SkelPtr<trace_bpf> skel_;
    std::vector<LinkPtr> links_;
    LinkPtr iter_link_;
    UniqueFd cgroup_fd_;
    std::unique_ptr<RingReader> ring_;
    unsigned hz_ = 0;
    SockoptHook hook_ = SockoptHook::none;
    bool sockopt_caller_ = true; // cfg_sockopt_caller: the kernel lets the hook name the caller
    std::vector<OptionalProgram> optional_;
    std::vector<LeftOutProgram> left_out_;
};

} // namespace rstwatch
