// rstwatch trace: the live session, and the host agent it becomes with
// --audit-interval, --max-events-per-sec, --metrics-listen and --config.
// One event loop over the ring buffer, a signalfd and a timer; every concern
// (signals, the 1 s tick, audits, metrics, config reload) is a small member of
// TraceSession so that the loop itself stays a dispatcher.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <future>
#include <optional>
#include <unordered_set>
#include <unistd.h>

#include "trace/agent_audit.hpp"
#include "bpf/bpf_util.hpp"
#include "cli/cli.hpp"
#include "cmd/commands.hpp"
#include "util/log.hpp"
#include "trace/loss_report.hpp"
#include "agent/metrics_http.hpp"
#include "output/setup.hpp"
#include "trace/pipeline.hpp"
#include "agent/session_loop.hpp"
#include "agent/reload.hpp"
#include "trace/rollup.hpp"
#include "trace/tracer.hpp"
#include "rstwatch/version.hpp"

namespace rstwatch {

namespace {

constexpr std::uint64_t kSecond = 1'000'000'000;
constexpr std::uint64_t kClockResync = 60 * kSecond;
// Samples handled per wake-up: under a flood faster than we can format, the
// loop still sees signals, ticks and deadlines between batches.
constexpr std::size_t kConsumeBudget = 4096;

std::vector<std::string> event_names(std::uint32_t mask) {
    std::vector<std::string> names;
    if (mask & RW_EMIT_RESET) names.emplace_back("reset");
    if (mask & RW_EMIT_TIMEOUT) names.emplace_back("timeout");
    if (mask & RW_EMIT_KEEPALIVE) names.emplace_back("keepalive");
    if (mask & RW_EMIT_CONNECTION) names.emplace_back("connection");
    if (mask & kEventSummary) names.emplace_back("summary");
    return names;
}

TracerConfig tracer_config(const TraceOptions &o) {
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
    return tc;
}

PipelineConfig pipeline_config(const TraceOptions &o) {
    return PipelineConfig{DiagnoseConfig::make(o.middlebox_timeout, o.idle_threshold),
                          o.filter.verdict, o.events & ~kEventSummary, o.count.value_or(0),
                          o.max_events_per_sec};
}

AuditSettings audit_settings(const TraceOptions &o) {
    return AuditSettings{o.filter, o.middlebox_timeout, o.metrics_top_comm};
}

// BTF facts (reset reason names) are only needed for output: parsed on a
// second thread while libbpf loads the programs.
std::future<KernelFacts> probe_kernel_async() {
    require_btf();
    return std::async(std::launch::async, probe_kernel);
}

// The metrics endpoint, bound before anything is loaded (a port in use must
// not leave BPF programs behind).
std::unique_ptr<MetricsServer> listen_for_metrics(const TraceOptions &o, MetricsRegistry &r) {
    if (!o.metrics_listen) return nullptr;
    return std::make_unique<MetricsServer>(*o.metrics_listen, r);
}

class TraceSession {
  public:
    explicit TraceSession(const TraceOptions &o)
        : o_(o), t_start_(WallClock::mono_now_ns()), sigfd_(block_session_signals()),
          // Output first: a bad path is a usage error and must not leave BPF
          // programs behind.
          fmt_(make_formatter(o.out)), out_(make_sink(o.out)),
          metrics_(listen_for_metrics(o, registry_)), facts_(probe_kernel_async()),
          tracer_(tracer_config(o), hz_fallback()), kernel_(facts_.get()),
          pipe_(pipeline_config(o), *fmt_, out_, cgroups_, kernel_, clock_),
          audit_(o.audit_interval, t_start_) {}

    int run() {
        start();
        while (running_) {
            wait_and_dispatch();
            const std::uint64_t now = WallClock::mono_now_ns();
            pipe_.flush_pending(now, false);
            if (now >= next_tick_) on_tick(now);
            if (audit_.due(now)) run_audit();
            check_stop(now);
            if (!out_.flush()) stop("output_closed");
            publish_metrics(); // after the flush, which counts what was written
        }
        finish();
        return 0;
    }

  private:
    void start() {
        // One iterator pass seeds the owners of existing sockets and, with
        // --audit-interval, also yields the first audit.
        std::vector<rw_snapshot> first_audit;
        if (audit_.enabled())
            tracer_.scan(true, [&first_audit](const rw_snapshot &s) { first_audit.push_back(s); });
        else
            tracer_.scan(true, {});
        const std::size_t seeded = tracer_.sock_entries();
        log_debug("owners of " + std::to_string(seeded) + " existing sockets seeded");
        tracer_.open_ring_buffer(
            [this](const void *d, std::size_t n) { return pipe_.on_sample(d, n); });

        t_ready_ = WallClock::mono_now_ns();
        SessionStart ss{WallClock::real_now_ns(),
                        RSTWATCH_VERSION,
                        kernel_.release,
                        std::uint32_t(getpid()),
                        event_names(o_.events),
                        to_string(tracer_.sockopt_hook()),
                        kernel_.rst_reason_arg,
                        tracer_.hz(),
                        o_.ringbuf_size,
                        seeded,
                        std::uint32_t((t_ready_ - t_start_) / 1'000'000),
                        tracer_.left_out()};
        fmt_->session_start(out_.buf(), ss);
        out_.flush();
        tracer_.cache_core_btf();
        if (metrics_) {
            registry_.set_build_info(
                BuildInfo{RSTWATCH_VERSION, kernel_.release,
                          std::string(to_string(tracer_.sockopt_hook())), kernel_.rst_reason_arg,
                          (o_.events & RW_EMIT_KEEPALIVE) != 0, double(ss.ts_ns) / 1e9});
            kernel_counters_ = tracer_.counters();
            publish_metrics();
        }
        if (audit_.enabled())
            publish_audit(audit_.emit(std::move(first_audit), *fmt_, out_, cgroups_,
                                      audit_settings(o_), t_ready_));
        if (o_.out.format == Format::text || !o_.out.path.empty())
            log_info("tracing TCP resets; Ctrl-C to stop");

        loop_.emplace(tracer_.ring_epoll_fd(), sigfd_.get());
        const std::uint64_t now = WallClock::mono_now_ns();
        next_tick_ = now + kSecond;
        next_resync_ = now + kClockResync;
        deadline_ = o_.duration ? t_ready_ + std::uint64_t(o_.duration->count()) * 1'000'000 : 0;
    }

    // Sleeps until a signal, the ring buffer's watermark or the next timed
    // duty, then drains the ring buffer: at least every kDrainIntervalNs, since
    // the kernel wakes us only past its watermark.
    void wait_and_dispatch() {
        const std::uint64_t now = WallClock::mono_now_ns();
        std::uint64_t wake = std::min(next_tick_, now + kDrainIntervalNs);
        for (std::uint64_t t : {deadline_, pipe_.pending_deadline(), audit_.next_ns()})
            if (t && t < wake) wake = t;
        const SessionLoop::Wake w = loop_->wait(more_ ? 0 : SessionLoop::timeout_ms(wake, now));
        for (unsigned i = 0; i < w.reopen; ++i) {
            out_.sink().reopen();
            if (!o_.config_path.empty()) reload_config();
        }
        if (w.stop) stop("signal");
        // A full batch means more is waiting: go round again without sleeping.
        more_ = tracer_.consume(kConsumeBudget) == kConsumeBudget;
    }

    // SIGHUP with --config: re-parse the original arguments (the file is read
    // again, the command line still wins). An invalid file changes nothing;
    // a valid one has its userspace-only settings applied together and every
    // other change named as needing a restart.
    void reload_config() {
        TraceOptions loaded;
        try {
            loaded = reload_trace_options(o_);
            resolve_cgroup_option(loaded);
        } catch (const Error &e) {
            ++reloads_failed_;
            last_reload_ok_ = false;
            log_error(std::string("SIGHUP: config not reloaded, the running configuration is "
                                  "unchanged: ") +
                      e.what());
            return;
        }
        ReloadPlan plan = plan_reload(o_, loaded);
        o_ = plan.next;
        const std::uint64_t now = WallClock::mono_now_ns();
        pipe_.reconfigure(DiagnoseConfig::make(o_.middlebox_timeout, o_.idle_threshold),
                          o_.filter.verdict);
        pipe_.set_rate_limit(o_.max_events_per_sec, now);
        if (std::find(plan.applied.begin(), plan.applied.end(), "audit-interval") !=
            plan.applied.end())
            audit_.set_interval(o_.audit_interval, now);
        ++reloads_ok_;
        last_reload_ok_ = true;
        (plan.need_restart.empty() ? log_info : log_warn)(describe(plan, o_.config_path));
    }

    void on_tick(std::uint64_t now) {
        kernel_counters_ = tracer_.counters();
        lost_.check(kernel_counters_, pipe_.limiter(), *fmt_, out_, clock_.to_realtime_ns(now));
        if (metrics_ && !metrics_->serving() && !metrics_down_reported_) {
            metrics_down_reported_ = true;
            log_error("the metrics endpoint stopped accepting connections; events still flow");
        }
        if (now >= next_resync_) {
            clock_.resync();
            next_resync_ = now + kClockResync;
        }
        next_tick_ = now + kSecond;
    }

    void run_audit() {
        publish_audit(audit_.run(tracer_, *fmt_, out_, cgroups_, audit_settings(o_)));
    }

    void publish_audit(AuditGauges g) {
        if (metrics_) registry_.publish_audit(std::move(g));
    }

    // A copy of a few hundred bytes under the registry's mutex; the HTTP
    // threads render from their own copy.
    void publish_metrics() {
        if (!metrics_) return;
        TraceCounters c = pipe_.stats();
        c.emitted = out_.emitted_by_kind();
        c.rate_limited = pipe_.limiter().suppressed();
        c.filtered_kernel = kernel_counters_.v[RW_CNT_FILTERED];
        c.write_dropped = out_.dropped();
        for (std::size_t i = 0; i < c.ringbuf_lost.size(); ++i)
            c.ringbuf_lost[i] = kernel_counters_.v[i];
        c.config_reloads_ok = reloads_ok_;
        c.config_reloads_failed = reloads_failed_;
        c.last_reload_ok = last_reload_ok_;
        registry_.publish(c);
    }

    void check_stop(std::uint64_t now) {
        if (deadline_ && now >= deadline_) stop("duration");
        if (pipe_.done()) stop("count");
    }

    void stop(std::string_view why) {
        if (!running_) return;
        running_ = false;
        end_reason_ = why;
    }

    // Drain what the kernel already produced, then account and summarise.
    void finish() {
        if (metrics_) metrics_->stop(); // joins the HTTP threads
        // Bounded by what the ring buffer can hold, so a flood cannot keep us
        // from exiting.
        if (!out_.closed() && !pipe_.done()) {
            const std::size_t limit = o_.ringbuf_size / sizeof(rw_sockopt) + kConsumeBudget;
            std::size_t drained = 0, n = 0;
            do {
                n = tracer_.consume(kConsumeBudget);
                drained += n;
            } while (n == kConsumeBudget && drained < limit && !out_.closed() && !pipe_.done());
        }
        pipe_.flush_pending(0, /*force=*/true);
        const std::int64_t ts_end = WallClock::real_now_ns();
        lost_.check(tracer_.counters(), pipe_.limiter(), *fmt_, out_, ts_end);
        if (o_.events & kEventSummary) {
            // Order matters: the kernel counts a connection when it reaches
            // CLOSE, then forgets it. Counters first, then what is still held
            // or closing: a connection closing in between is at worst missed, never
            // counted twice.
            auto stats = tracer_.proc_stats();
            std::vector<rw_snapshot> open;
            std::unordered_set<std::uint64_t> held;
            tracer_.scan(false, [&](const rw_snapshot &s) {
                open.push_back(s);
                held.insert(s.sock_id);
            });
            auto closing = tracer_.socks_not_in(held);
            for (auto &p : build_process_summaries(stats, open, closing, o_.filter)) {
                p.cgroup = cgroups_.of_pid(p.pid);
                if (!p.comm.empty() || p.pid) fmt_->process_summary(out_.buf(), ts_end, p);
            }
        }
        out_.flush();
        Counters c = tracer_.counters();
        SessionSummary sum{ts_end,
                           (WallClock::mono_now_ns() - t_ready_) / 1'000'000,
                           end_reason_,
                           out_.emitted(),
                           c.v[RW_CNT_FILTERED],
                           pipe_.filtered(),
                           c.lost(),
                           pipe_.limiter().suppressed_total(),
                           out_.dropped(),
                           pipe_.malformed(),
                           pipe_.resets(),
                           pipe_.timeouts()};
        fmt_->session_summary(out_.buf(), sum);
        out_.flush();
    }

    // Declaration order is construction order (see the constructor).
    TraceOptions o_;
    const std::uint64_t t_start_;
    UniqueFd sigfd_;
    std::unique_ptr<Formatter> fmt_;
    Output out_;
    MetricsRegistry registry_;
    std::unique_ptr<MetricsServer> metrics_;
    std::future<KernelFacts> facts_;
    Tracer tracer_;
    const KernelFacts kernel_;
    CgroupResolver cgroups_;
    WallClock clock_;
    TracePipeline pipe_;
    PeriodicAudit audit_;
    LostReporter lost_;
    std::optional<SessionLoop> loop_; // from start(), when the ring buffer is open

    Counters kernel_counters_; // read once per tick
    std::uint64_t t_ready_ = 0;
    std::uint64_t next_tick_ = 0, next_resync_ = 0, deadline_ = 0;
    std::uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
    bool last_reload_ok_ = true;
    bool metrics_down_reported_ = false;
    bool running_ = true;
    bool more_ = false; // the last drain stopped at its budget
    std::string_view end_reason_ = "signal";
};

} // namespace

int run_trace(const TraceOptions &given) {
    TraceOptions o = given;
    resolve_cgroup_option(o); // before anything is opened or loaded
    TraceSession session(o);
    return session.run();
}

} // namespace rstwatch
