#include "event/diagnose.hpp"

#include <cstring>
#include <sys/socket.h>

#include "util/units.hpp"

namespace rstwatch {

std::string_view to_string(Verdict v) {
    switch (v) {
    case Verdict::keepalive_disabled:
        return "keepalive_disabled";
    case Verdict::keepalive_too_slow:
        return "keepalive_too_slow";
    case Verdict::not_idle:
        return "not_idle";
    case Verdict::no_socket:
        return "no_socket";
    case Verdict::local_abort:
        return "local_abort";
    case Verdict::unknown:
        break;
    }
    return "unknown";
}

std::string_view to_string(Origin o) {
    switch (o) {
    case Origin::local:
        return "local";
    case Origin::peer:
        return "peer";
    case Origin::middlebox:
        return "middlebox";
    case Origin::unknown:
        break;
    }
    return "unknown";
}

std::optional<Verdict> parse_verdict(std::string_view s) {
    for (auto v : {Verdict::keepalive_disabled, Verdict::keepalive_too_slow, Verdict::not_idle,
                   Verdict::no_socket, Verdict::local_abort, Verdict::unknown})
        if (to_string(v) == s) return v;
    return std::nullopt;
}

DiagnoseConfig DiagnoseConfig::make(std::optional<std::chrono::milliseconds> middlebox,
                                    std::optional<std::chrono::milliseconds> threshold) {
    DiagnoseConfig c;
    c.middlebox_timeout = middlebox;
    if (threshold)
        c.idle_threshold = *threshold;
    else if (middlebox)
        c.idle_threshold = std::chrono::milliseconds(middlebox->count() * 9 / 10);
    return c;
}

namespace {

using std::chrono::milliseconds;

std::string secs(std::uint64_t ms) {
    return format_duration(milliseconds(std::int64_t(ms)));
}

// Resets this host sends because it aborted the connection itself.
bool is_local_abort_reason(std::string_view reason) {
    return reason == "TCP_ABORT_ON_CLOSE" || reason == "TCP_ABORT_ON_LINGER" ||
           reason == "TCP_ABORT_ON_DATA" || reason == "TCP_ABORT_ON_MEMORY" ||
           reason == "TCP_DISCONNECT_WITH_DATA" || reason == "TCP_KEEPALIVE_TIMEOUT";
}

// The shared idle/keepalive reasoning for resets and timeouts.
Diagnosis idle_verdict(const rw_keepalive &ka, std::uint64_t idle_ms, const DiagnoseConfig &cfg,
                       const char *what) {
    Diagnosis d;
    const std::uint64_t threshold = std::uint64_t(cfg.idle_threshold.count());
    const std::uint64_t ka_ms = std::uint64_t(ka.idle_s) * 1000;
    std::string mb =
        cfg.middlebox_timeout
            ? " (middlebox timeout " + secs(std::uint64_t(cfg.middlebox_timeout->count())) + ")"
            : std::string();
    if (idle_ms < threshold) {
        d.verdict = Verdict::not_idle;
        d.explanation = std::string("The connection was idle only ") + secs(idle_ms) +
                        " before the " + what + ", below the " + secs(threshold) +
                        " idle threshold, so an idle timeout does not explain it.";
        return d;
    }
    if (!ka.enabled) {
        d.verdict = Verdict::keepalive_disabled;
        d.explanation =
            std::string("The connection was idle for ") + secs(idle_ms) +
            " with SO_KEEPALIVE off, so no probe kept a stateful middlebox" + mb +
            " from expiring it; enable SO_KEEPALIVE with TCP_KEEPIDLE below the timeout.";
        return d;
    }
    const bool slower_than_idle = ka_ms >= idle_ms;
    const bool slower_than_box =
        cfg.middlebox_timeout && ka_ms >= std::uint64_t(cfg.middlebox_timeout->count());
    // The first probe leaves once the connection has been idle for ka_ms, late
    // by up to an eighth of that (timer wheel granularity), and the next one an
    // interval later. Measured in the lab: an RST answering the first probe
    // arrives at an idle time a little past ka_ms. A death inside that window
    // means the first probe found the middlebox state already gone. Only used
    // when the timeout is unknown: a known one already decides.
    const bool first_probe_failed =
        !cfg.middlebox_timeout && !slower_than_idle &&
        idle_ms < ka_ms + ka_ms / 8 + std::uint64_t(ka.interval_s) * 1000;
    if (slower_than_idle || slower_than_box) {
        std::string limit =
            slower_than_box
                ? "the middlebox timeout of " + secs(std::uint64_t(cfg.middlebox_timeout->count()))
                : "the " + secs(idle_ms) + " idle period";
        d.verdict = Verdict::keepalive_too_slow;
        d.explanation = "Keepalive was on but its idle time " + secs(ka_ms) +
                        " is not shorter than " + limit +
                        ", so no probe refreshed the middlebox state; lower TCP_KEEPIDLE.";
        return d;
    }
    if (first_probe_failed) {
        d.verdict = Verdict::keepalive_too_slow;
        d.explanation = "Keepalive was on, but its first probe after " + secs(ka_ms) +
                        " of idle time found the middlebox state already gone (the connection "
                        "died " +
                        secs(idle_ms - ka_ms) +
                        " later), so the middlebox timeout is shorter than " + secs(ka_ms) +
                        "; lower TCP_KEEPIDLE.";
        return d;
    }
    d.verdict = Verdict::unknown;
    d.explanation = std::string("Keepalive (") + secs(ka_ms) +
                    ") should have kept the connection alive through " + secs(idle_ms) +
                    " of idle time; the cause lies elsewhere.";
    return d;
}

} // namespace

Diagnosis diagnose_reset(const rw_reset &r, std::string_view kernel_reason,
                         const DiagnoseConfig &cfg) {
    Diagnosis d;
    if (r.flags & RW_F_NO_SOCKET) {
        d.verdict = Verdict::no_socket;
        d.explanation = "The RST answered a packet that matched no socket (nothing listening on "
                        "that port, or the connection was already gone).";
        return d;
    }
    if (r.direction == RW_DIR_RECEIVED && r.ep.state == 2 /* TCP_SYN_SENT */) {
        d.verdict = Verdict::no_socket;
        d.explanation = "Connection refused: the RST answered this host's SYN, so nothing accepted "
                        "connections on the remote port.";
        return d;
    }
    if (r.direction == RW_DIR_SENT &&
        ((r.flags & RW_F_ACTIVE) || is_local_abort_reason(kernel_reason))) {
        d.verdict = Verdict::local_abort;
        if (kernel_reason == "TCP_KEEPALIVE_TIMEOUT")
            d.explanation =
                "This host gave up after its keepalive probes went unanswered and reset "
                "the connection.";
        else if (kernel_reason == "TCP_ABORT_ON_MEMORY")
            d.explanation = "This host reset the connection because it ran out of socket memory.";
        else
            d.explanation =
                "This host aborted the connection itself (SO_LINGER 0, close() with unread "
                "data, or an abortive disconnect).";
        return d;
    }
    if (!(r.flags & RW_F_FULLSOCK) || !(r.flags & RW_F_TIMERS)) {
        d.verdict = Verdict::unknown;
        d.explanation = "The socket was not a full connection (TIME_WAIT or a pending "
                        "handshake), so its idle time is unknown.";
        return d;
    }
    return idle_verdict(r.ka, r.tm.idle_ms, cfg, "reset");
}

Diagnosis diagnose_timeout(const rw_close &c, const DiagnoseConfig &cfg) {
    Diagnosis d = idle_verdict(c.ka, c.tm.idle_ms, cfg, "connection stopped getting answers");
    // Keepalive probes that went unanswered before the write that finally
    // timed out: the first probe already found the middlebox state gone.
    if (d.verdict == Verdict::unknown && c.ka.enabled && c.probes_out > 0 &&
        c.cause != RW_CAUSE_KEEPALIVE && !cfg.middlebox_timeout) {
        d.verdict = Verdict::keepalive_too_slow;
        d.explanation = "Keepalive was on, but " + std::to_string(c.probes_out) +
                        " probe(s) sent after " + secs(std::uint64_t(c.ka.idle_s) * 1000) +
                        " of idle time went unanswered before the write that timed out, so the "
                        "middlebox had already forgotten the connection; lower TCP_KEEPIDLE.";
    }
    return d;
}

bool OriginTracker::Key::operator==(const Key &o) const {
    return lport == o.lport && rport == o.rport && std::memcmp(local, o.local, 16) == 0 &&
           std::memcmp(remote, o.remote, 16) == 0;
}

OriginTracker::Key OriginTracker::key_of(const rw_reset &r, bool mirrored) {
    // Normalise IPv4 to v4-mapped so v4 and dual-stack sockets compare equal.
    auto norm = [&r](std::uint8_t out[16], const std::uint8_t in[16]) {
        if (r.ep.family == AF_INET) {
            std::memset(out, 0, 10);
            out[10] = out[11] = 0xff;
            std::memcpy(out + 12, in, 4);
        } else {
            std::memcpy(out, in, 16);
        }
    };
    Key k{};
    if (mirrored) {
        norm(k.local, r.ep.remote_addr);
        norm(k.remote, r.ep.local_addr);
        k.lport = r.ep.remote_port;
        k.rport = r.ep.local_port;
    } else {
        norm(k.local, r.ep.local_addr);
        norm(k.remote, r.ep.remote_addr);
        k.lport = r.ep.local_port;
        k.rport = r.ep.remote_port;
    }
    return k;
}

std::uint64_t OriginTracker::fingerprint(const rw_reset &r, bool mirrored) {
    const Key k = key_of(r, mirrored);
    std::uint64_t w[4];
    std::uint32_t ports;
    std::memcpy(w, k.local, 16);
    std::memcpy(w + 2, k.remote, 16);
    std::memcpy(&ports, &k.lport, 4);
    // Multiply-xorshift over the words, then murmur3's 64-bit finaliser.
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ ports;
    for (std::uint64_t x : w)
        h = (h ^ x) * 0xbf58476d1ce4e5b9ull, h ^= h >> 31;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

std::uint64_t *OriginTracker::FingerprintMap::find(std::uint64_t fp) {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = slot_of(fp);; i = (i + 1) & (slots_.size() - 1)) {
        if (slots_[i].fp == fp) return &slots_[i].value;
        if (slots_[i].fp == 0) return nullptr;
    }
}

void OriginTracker::FingerprintMap::grow() {
    std::vector<Slot> old(slots_.empty() ? 1024 : slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (const Slot &s : old)
        if (s.fp) put(s.fp, s.value);
}

void OriginTracker::FingerprintMap::put(std::uint64_t fp, std::uint64_t value) {
    if (2 * (size_ + 1) > slots_.size()) grow(); // load factor <= 1/2
    for (std::size_t i = slot_of(fp);; i = (i + 1) & (slots_.size() - 1)) {
        if (slots_[i].fp == fp) {
            slots_[i].value = value;
            return;
        }
        if (slots_[i].fp == 0) {
            slots_[i] = Slot{fp, value};
            ++size_;
            return;
        }
    }
}

void OriginTracker::FingerprintMap::erase(std::uint64_t fp) {
    if (slots_.empty()) return;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = slot_of(fp);
    while (slots_[i].fp != fp) {
        if (slots_[i].fp == 0) return;
        i = (i + 1) & mask;
    }
    // Backward-shift: move later entries of the probe run into the hole when
    // their home slot is not between the hole and them.
    for (std::size_t j = (i + 1) & mask; slots_[j].fp; j = (j + 1) & mask) {
        const std::size_t home = slot_of(slots_[j].fp);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            slots_[i] = slots_[j];
            i = j;
        }
    }
    slots_[i] = Slot{0, 0};
    --size_;
}

void OriginTracker::on_sent(const rw_reset &sent, std::vector<std::pair<rw_reset, Origin>> &ready) {
    const std::uint64_t fp = fingerprint(sent, false);
    // A received reset held for this one? (Its key is stored mirrored, so it
    // equals the sent reset's own key.)
    if (std::uint64_t *seq = held_by_key_.find(fp)) {
        Held &held = held_[std::size_t(*seq - held_base_seq_)];
        held.done = true;
        --held_count_;
        ready.emplace_back(held.rec, Origin::peer);
        held_by_key_.erase(fp);
        return;
    }
    // Remember it for a received reset still to come; expire by age and size.
    const std::uint64_t now = sent.hdr.ts_ns;
    while (!sent_order_.empty() &&
           (now - sent_order_.front().first > window_ns_ || sent_order_.size() >= kMaxEntries)) {
        const auto [t, old] = sent_order_.front();
        if (std::uint64_t *at = sent_.find(old); at && *at == t) sent_.erase(old);
        sent_order_.pop_front();
    }
    sent_.put(fp, now);
    sent_order_.emplace_back(now, fp);
}

std::optional<Origin> OriginTracker::on_received(const rw_reset &received) {
    const std::uint64_t fp = fingerprint(received, true);
    if (std::uint64_t *at = sent_.find(fp); at && received.hdr.ts_ns - *at <= window_ns_) {
        sent_.erase(fp); // its sent_order_ entry goes stale and is skipped on expiry
        return Origin::peer;
    }
    if (held_count_ >= kMaxEntries) return without_peer_reset(received); // storm: decide now
    const std::uint64_t seq = held_base_seq_ + held_.size();
    held_.push_back(Held{received, seq, false});
    ++held_count_;
    held_by_key_.put(fp, seq);
    return std::nullopt;
}

void OriginTracker::release(std::uint64_t now_ns, bool force,
                            std::vector<std::pair<rw_reset, Origin>> &ready) {
    while (!held_.empty() &&
           (held_.front().done || force || now_ns >= held_.front().rec.hdr.ts_ns + hold_ns_)) {
        Held &h = held_.front();
        if (!h.done) {
            --held_count_;
            ready.emplace_back(h.rec, without_peer_reset(h.rec));
            const std::uint64_t fp = fingerprint(h.rec, true);
            if (std::uint64_t *at = held_by_key_.find(fp); at && *at == h.seq)
                held_by_key_.erase(fp);
        }
        held_.pop_front();
        ++held_base_seq_;
    }
}

std::uint64_t OriginTracker::next_deadline() const {
    for (const auto &h : held_)
        if (!h.done) return h.rec.hdr.ts_ns + hold_ns_;
    return 0;
}

bool OriginTracker::pairs(const rw_reset &received, const rw_reset &sent) {
    return key_of(received, true) == key_of(sent, false);
}

Origin OriginTracker::without_peer_reset(const rw_reset &received) {
    return (received.flags & RW_F_PEER_LOCAL) ? Origin::middlebox : Origin::unknown;
}

} // namespace rstwatch
