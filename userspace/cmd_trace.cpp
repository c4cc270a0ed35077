// rstwatch trace: the live session. Wires the stages and runs one event loop
// over the ring buffer, a signalfd and a 1 s tick.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <future>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "rstwatch/bpf_util.hpp"
#include "rstwatch/commands.hpp"
#include "rstwatch/log.hpp"
#include "rstwatch/output_setup.hpp"
#include "rstwatch/pipeline.hpp"
#include "rstwatch/summary.hpp"
#include "rstwatch/tracer.hpp"
#include "rstwatch/version.hpp"

namespace rstwatch {

namespace {

std::vector<std::string> event_names(std::uint32_t mask) {
    std::vector<std::string> names;
    if (mask & RW_EMIT_RESET) names.emplace_back("reset");
    if (mask & RW_EMIT_TIMEOUT) names.emplace_back("timeout");
    if (mask & RW_EMIT_KEEPALIVE) names.emplace_back("keepalive");
    if (mask & RW_EMIT_CONNECTION) names.emplace_back("connection");
    if (mask & kEventSummary) names.emplace_back("summary");
    return names;
}

// Emits a `lost` event whenever the BPF side failed to reserve ring-buffer space
// since the last check.
class LostReporter {
  public:
    void check(const Counters &c, Output &out, std::int64_t ts_ns) {
        std::uint64_t total = c.lost();
        if (total == last_total_) return;
        LostEvent ev{ts_ns, "ringbuf_full", total - last_total_, total, {}};
        for (int i = 0; i < 4; ++i)
            ev.by_type[std::size_t(i)] = c.v[std::size_t(i)] - last_.v[std::size_t(i)];
        out.fmt().lost(out.buf(), ev);
        last_ = c;
        last_total_ = total;
    }

  private:
    Counters last_;
    std::uint64_t last_total_ = 0;
};

// Samples handled per wake-up: under a flood faster than we can format, the
// loop still sees signals, ticks and deadlines between batches.
constexpr std::size_t kConsumeBudget = 4096;

UniqueFd block_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    // Blocked before any thread exists, so the signalfd is the only receiver.
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    UniqueFd fd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd) throw Error(Exit::runtime, std::string("signalfd: ") + std::strerror(errno));
    return fd;
}

} // namespace

int run_trace(const TraceOptions &o) {
    const std::uint64_t t_start = WallClock::mono_now_ns();
    UniqueFd sigfd = block_signals();

    // Open the output before loading anything: a bad path is a usage error
    // and must not leave BPF programs behind.
    Output out(make_formatter(o.out), make_sink(o.out));

    // BTF facts (reset reason names) are only needed for output: parse them on
    // a second thread while libbpf loads the programs.
    require_btf();
    std::future<KernelFacts> facts = std::async(std::launch::async, probe_kernel);
    TracerConfig tc;
    tc.emit = o.events & (RW_EMIT_RESET | RW_EMIT_TIMEOUT | RW_EMIT_KEEPALIVE | RW_EMIT_CONNECTION);
    tc.filter.pid = o.filter.pid.value_or(0);
    tc.filter.comm = o.filter.comm;
    tc.filter.port = o.filter.port.value_or(0);
    tc.filter.netns = o.filter.netns.value_or(0);
    tc.filter.cgroup_id = o.filter.cgroup_id;
    tc.filter.cgroup_level = o.filter.cgroup_level;
    tc.filter.min_idle_ms = o.filter.min_idle ? std::uint32_t(o.filter.min_idle->count()) : 0;
    tc.ringbuf_bytes = std::uint32_t(o.ringbuf_size);
    tc.max_sockets = o.max_sockets;
    Tracer tracer(tc, hz_fallback());
    tracer.scan(/*seed=*/true, {});
    const std::size_t seeded = tracer.sock_entries();

    CgroupResolver cgroups;
    WallClock clock;
    PipelineConfig pc{DiagnoseConfig::make(o.middlebox_timeout, o.idle_threshold), o.filter.verdict,
                      tc.emit, o.count.value_or(0)};
    const KernelFacts kernel = facts.get();
    TracePipeline pipe(pc, out, cgroups, kernel, clock);
    tracer.open_ring_buffer([&pipe](const void *d, std::size_t n) { return pipe.on_sample(d, n); });

    const std::uint64_t t_ready = WallClock::mono_now_ns();
    SessionStart ss{WallClock::real_now_ns(),
                    RSTWATCH_VERSION,
                    kernel.release,
                    std::uint32_t(getpid()),
                    event_names(o.events),
                    to_string(tracer.sockopt_hook()),
                    kernel.rst_reason_arg,
                    tracer.hz(),
                    o.ringbuf_size,
                    seeded,
                    std::uint32_t((t_ready - t_start) / 1'000'000)};
    out.fmt().session_start(out.buf(), ss);
    out.flush();
    if (o.out.format == Format::text || !o.out.path.empty())
        log_info("tracing TCP resets; Ctrl-C to stop");

    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    auto add = [&](int fd, std::uint64_t tag) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
            throw Error(Exit::runtime, std::string("epoll_ctl: ") + std::strerror(errno));
    };
    add(tracer.ring_epoll_fd(), 1);
    add(sigfd.get(), 2);

    const std::uint64_t deadline =
        o.duration ? t_ready + std::uint64_t(o.duration->count()) * 1'000'000 : 0;
    std::uint64_t next_tick = t_ready + 1'000'000'000;
    std::uint64_t next_resync = t_ready + 60'000'000'000ull;
    LostReporter lost;
    std::string_view end_reason = "signal";
    bool running = true;
    bool more = false; // the last drain stopped at its budget

    while (running) {
        std::uint64_t now = WallClock::mono_now_ns();
        // Drain at least every kDrainIntervalNs: the kernel wakes us only
        // when the ring buffer fills past its watermark.
        std::uint64_t wake = std::min(next_tick, now + kDrainIntervalNs);
        if (deadline && deadline < wake) wake = deadline;
        if (std::uint64_t p = pipe.pending_deadline(); p && p < wake) wake = p;
        int timeout_ms = wake > now && !more ? int((wake - now + 999'999) / 1'000'000) : 0;
        epoll_event evs[4];
        int n = epoll_wait(ep.get(), evs, 4, timeout_ms);
        if (n < 0 && errno != EINTR)
            throw Error(Exit::runtime, std::string("epoll_wait: ") + std::strerror(errno));
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.u64 != 1) {
                signalfd_siginfo si{};
                while (read(sigfd.get(), &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGHUP) {
                        out.sink().reopen();
                    } else {
                        running = false;
                        end_reason = "signal";
                    }
                }
            }
        }
        // A full batch means more is waiting: go round again without sleeping.
        more = tracer.consume(kConsumeBudget) == kConsumeBudget;
        now = WallClock::mono_now_ns();
        pipe.flush_pending(now, false);
        if (now >= next_tick) {
            lost.check(tracer.counters(), out, clock.to_realtime_ns(now));
            next_tick = now + 1'000'000'000;
        }
        if (now >= next_resync) {
            clock.resync();
            next_resync = now + 60'000'000'000ull;
        }
        if (deadline && now >= deadline) {
            running = false;
            end_reason = "duration";
        }
        if (pipe.done()) {
            running = false;
            end_reason = "count";
        }
        if (!out.flush()) {
            running = false;
            end_reason = "output_closed";
        }
    }

    // Drain what the kernel already produced, then account and summarise. Bounded
    // by what the ring buffer can hold, so a flood cannot keep us from exiting.
    if (!out.closed() && !pipe.done()) {
        const std::size_t limit = o.ringbuf_size / sizeof(rw_sockopt) + kConsumeBudget;
        std::size_t drained = 0, n = 0;
        do {
            n = tracer.consume(kConsumeBudget);
            drained += n;
        } while (n == kConsumeBudget && drained < limit && !out.closed() && !pipe.done());
    }
    pipe.flush_pending(0, /*force=*/true);
    const std::int64_t ts_end = WallClock::real_now_ns();
    lost.check(tracer.counters(), out, ts_end);
    if (o.events & kEventSummary) {
        std::vector<rw_snapshot> open;
        tracer.scan(false, [&open](const rw_snapshot &s) { open.push_back(s); });
        for (auto &p : build_process_summaries(tracer.proc_stats(), open, o.filter)) {
            p.cgroup = cgroups.of_pid(p.pid);
            if (!p.comm.empty() || p.pid) out.fmt().process_summary(out.buf(), ts_end, p);
        }
    }
    out.flush();
    Counters c = tracer.counters();
    SessionSummary sum{ts_end,
                       (WallClock::mono_now_ns() - t_ready) / 1'000'000,
                       end_reason,
                       out.emitted(),
                       c.v[RW_CNT_FILTERED],
                       pipe.filtered(),
                       c.lost(),
                       0,
                       out.dropped(),
                       pipe.malformed(),
                       pipe.resets(),
                       pipe.timeouts()};
    out.fmt().session_summary(out.buf(), sum);
    out.flush();
    return 0;
}

} // namespace rstwatch
