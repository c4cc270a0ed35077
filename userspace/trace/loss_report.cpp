#include "trace/loss_report.hpp"

namespace rstwatch {

void LostReporter::check(const Counters &c, const EventRateLimiter &limiter, Formatter &fmt,
                         Output &out, std::int64_t ts_ns) {
    if (std::uint64_t total = c.lost(); total != last_kernel_total_) {
        LostEvent ev{ts_ns, "ringbuf_full", total - last_kernel_total_, total, {}};
        for (std::size_t i = 0; i < 4; ++i)
            ev.by_type[i] = c.v[i] - last_kernel_.v[i];
        fmt.lost(out.buf(), ev);
        last_kernel_ = c;
        last_kernel_total_ = total;
    }
    if (std::uint64_t total = limiter.suppressed_total(); total != last_suppressed_total_) {
        EventCounts since{};
        for (std::size_t i = 0; i < kEventKinds; ++i)
            since[i] = limiter.suppressed()[i] - last_suppressed_[i];
        auto n = [&](EventKind k) { return since[std::size_t(k)]; };
        LostEvent ev{ts_ns, "rate_limit", total - last_suppressed_total_, total, {}, &since};
        ev.by_type = {n(EventKind::tcp_reset), n(EventKind::keepalive_set),
                      n(EventKind::tcp_timeout) + n(EventKind::connection_closed), 0};
        fmt.lost(out.buf(), ev);
        last_suppressed_ = limiter.suppressed();
        last_suppressed_total_ = total;
    }
}

} // namespace rstwatch
