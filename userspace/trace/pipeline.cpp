#include "trace/pipeline.hpp"

#include <netinet/in.h>

#include "event/decode.hpp"
#include "util/log.hpp"

namespace rstwatch {

TracePipeline::TracePipeline(PipelineConfig cfg, Formatter &fmt, Output &out,
                             CgroupResolver &cgroups, const KernelFacts &kernel,
                             const WallClock &clock)
    : cfg_(std::move(cfg)), fmt_(fmt), out_(out), cgroups_(cgroups), kernel_(kernel), clock_(clock),
      limiter_(cfg_.max_events_per_sec, WallClock::mono_now_ns()), filter_(cfg_.verdict) {}

void TracePipeline::reconfigure(const DiagnoseConfig &dx, std::optional<Verdict> verdict) {
    cfg_.dx = dx;
    cfg_.verdict = verdict;
    filter_.set(verdict);
}

bool TracePipeline::keep(std::optional<Verdict> verdict) {
    if (filter_.pass(verdict)) return true;
    stats_.filtered_user = filter_.dropped();
    return false;
}

void TracePipeline::set_rate_limit(std::uint64_t per_sec, std::uint64_t now_ns) {
    cfg_.max_events_per_sec = per_sec;
    limiter_.set_rate(per_sec, now_ns);
}

std::string_view TracePipeline::reason_name(std::int32_t v) const {
    if (v < 0 || std::size_t(v) >= kernel_.rst_reason_names.size()) return {};
    return kernel_.rst_reason_names[std::size_t(v)];
}

void TracePipeline::maybe_flush() {
    // Bound the buffer during a long drain; the drain's end flushes the rest.
    // 256 KiB stays in a core's L2 cache: formatting into a buffer past it
    // misses the cache at every line (a quarter of the encoder's time in a
    // storm of held resets, docs/PERFORMANCE.md), and a write(2) of 256 KiB
    // costs no more per byte than one of 1 MiB.
    if (out_.buf().size() > (256u << 10)) out_.flush();
}

int TracePipeline::on_sample(const void *data, std::size_t size) {
    if (done() || out_.closed()) return -1;
    std::string why;
    auto rec = decode_record(data, size, &why);
    if (!rec) {
        ++stats_.malformed;
        if (malformed_++ == 0) log_warn("dropping a malformed ring-buffer record: " + why);
        return 0;
    }
    if (auto *r = std::get_if<rw_reset>(&*rec))
        on_reset(*r);
    else if (auto *c = std::get_if<rw_close>(&*rec))
        on_close(*c);
    else if (auto *s = std::get_if<rw_sockopt>(&*rec))
        on_sockopt(*s);
    maybe_flush();
    return done() ? -1 : 0;
}

void TracePipeline::on_reset(const rw_reset &r) {
    ++resets_;
    if (r.direction == RW_DIR_SENT) {
        ready_.clear();
        origins_.on_sent(r, ready_);
        // A received reset that arrived first and waited for this one.
        for (auto &[rec, origin] : ready_)
            emit_reset(rec, origin);
        emit_reset(r, Origin::local);
        return;
    }
    if (auto origin = origins_.on_received(r)) emit_reset(r, *origin);
}

void TracePipeline::flush_pending(std::uint64_t now_ns, bool force) {
    ready_.clear();
    origins_.release(now_ns, force, ready_);
    for (auto &[rec, origin] : ready_) {
        emit_reset(rec, origin);
        maybe_flush();
    }
}

std::uint64_t TracePipeline::pending_deadline() const {
    return origins_.next_deadline();
}

void TracePipeline::emit_reset(const rw_reset &r, Origin origin) {
    if (done()) return;
    std::string_view reason = reason_name(r.kernel_reason);
    Diagnosis dx = diagnose_reset(r, reason, cfg_.dx);
    ++stats_.resets[r.direction == RW_DIR_SENT ? 0 : 1][std::size_t(dx.verdict)];
    if (!keep(dx.verdict)) return;
    if (!admit(EventKind::tcp_reset, r.hdr.ts_ns)) return;
    ResetEvent ev{r,      clock_.to_realtime_ns(r.hdr.ts_ns), reason, dx,
                  origin, cgroups_.lookup(r.owner.cgroup_id)};
    fmt_.reset(out_.buf(), ev);
    out_.event_added(EventKind::tcp_reset);
    ++events_;
}

void TracePipeline::on_close(const rw_close &c) {
    const CgroupInfo *cg = cgroups_.lookup(c.owner.cgroup_id);
    const std::int64_t ts = clock_.to_realtime_ns(c.hdr.ts_ns);
    if (c.cause != RW_CAUSE_NONE && (cfg_.emit & RW_EMIT_TIMEOUT)) {
        ++timeouts_;
        Diagnosis dx = diagnose_timeout(c, cfg_.dx);
        ++stats_.timeouts[c.cause < kTimeoutCauses ? c.cause : 0][std::size_t(dx.verdict)];
        if (keep(dx.verdict) && admit(EventKind::tcp_timeout, c.hdr.ts_ns)) {
            fmt_.timeout(out_.buf(), TimeoutEvent{c, ts, dx, cg});
            out_.event_added(EventKind::tcp_timeout);
            ++events_;
        }
    }
    if ((cfg_.emit & RW_EMIT_CONNECTION) && (c.flags & RW_F_ESTABLISHED) && !done()) {
        // Connections carry no verdict: --verdict hides them.
        if (!keep(std::nullopt)) return;
        if (!admit(EventKind::connection_closed, c.hdr.ts_ns)) return;
        fmt_.connection_closed(out_.buf(), ClosedEvent{c, ts, cg});
        out_.event_added(EventKind::connection_closed);
        ++events_;
    }
}

void TracePipeline::on_sockopt(const rw_sockopt &s) {
    if (std::size_t opt = keepalive_option_index(s.level, s.optname); opt < kKeepaliveOptions) {
        const bool misdirected = s.level == IPPROTO_TCP && s.optname == 9;
        ++stats_.keepalive_set[opt][misdirected ? 2 : s.result == 0 ? 0 : 1];
    }
    if (!keep(std::nullopt)) return;
    if (!admit(EventKind::keepalive_set, s.hdr.ts_ns)) return;
    fmt_.keepalive_set(out_.buf(), KeepaliveSetEvent{s, clock_.to_realtime_ns(s.hdr.ts_ns),
                                                     cgroups_.lookup(s.owner.cgroup_id)});
    out_.event_added(EventKind::keepalive_set);
    ++events_;
}

} // namespace rstwatch
