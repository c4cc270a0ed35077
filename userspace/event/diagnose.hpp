// Diagnose stage: a verdict and a one-sentence explanation for every reset and
// timeout, and who sent a received RST. Pure logic, unit-tested without BPF.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rstwatch/records.h"

namespace rstwatch {

enum class Verdict : std::uint8_t {
    keepalive_disabled,
    keepalive_too_slow,
    not_idle,
    no_socket,
    local_abort,
    unknown,
};

// Who put the RST on the wire, seen from the socket that received it.
enum class Origin : std::uint8_t {
    local,     // this socket sent it (direction "sent")
    peer,      // the far end's socket on this host sent it
    middlebox, // the far end is a live socket on this host that sent nothing
    unknown,
};

std::string_view to_string(Verdict v);
std::string_view to_string(Origin o);
std::optional<Verdict> parse_verdict(std::string_view s);

struct DiagnoseConfig {
    // The firewall/NAT idle timeout the user knows about (--middlebox-timeout).
    std::optional<std::chrono::milliseconds> middlebox_timeout;
    // Idle time from which a reset counts as idle-related (--idle-threshold);
    // default: 90 % of the middlebox timeout, else 60 s.
    std::chrono::milliseconds idle_threshold{60'000};

    static DiagnoseConfig make(std::optional<std::chrono::milliseconds> middlebox,
                               std::optional<std::chrono::milliseconds> threshold);
};

struct Diagnosis {
    Verdict verdict = Verdict::unknown;
    std::string explanation;
};

// kernel_reason: the sk_rst_reason name ("TCP_ABORT_ON_CLOSE"), empty if none.
Diagnosis diagnose_reset(const rw_reset &r, std::string_view kernel_reason,
                         const DiagnoseConfig &cfg);

// A connection the kernel gave up on (rw_close with cause != NONE).
Diagnosis diagnose_timeout(const rw_close &c, const DiagnoseConfig &cfg);

// Pairs a received RST with the RST the peer socket sent (both ends on this
// host, any network namespace), in either order: an abortive close traces its
// RST after transmitting it, and on loopback/veth the receiver runs nested in
// that transmit, so the received reset often comes first. A received reset with
// no peer reset yet is held for `hold` and then decided without one.
//
// Every operation is O(1) amortised and memory is bounded (kMaxEntries each),
// so a storm of unpaired resets (remote peers) costs the same per event.
class OriginTracker {
  public:
    static constexpr std::size_t kMaxEntries = 65536;

    explicit OriginTracker(std::chrono::milliseconds window = std::chrono::seconds(5),
                           std::chrono::milliseconds hold = std::chrono::milliseconds(100))
        : window_ns_(std::uint64_t(window.count()) * 1'000'000),
          hold_ns_(std::uint64_t(hold.count()) * 1'000'000) {}

    // A sent reset. A held received reset it answers is appended to `ready`
    // with Origin::peer.
    void on_sent(const rw_reset &sent, std::vector<std::pair<rw_reset, Origin>> &ready);
    // A received reset: Origin::peer if the peer's sent reset was already seen,
    // else nullopt and the reset is held.
    std::optional<Origin> on_received(const rw_reset &received);
    // Held resets whose wait is over at monotonic time now_ns (all with force),
    // oldest first, with the origin decided without a peer reset.
    void release(std::uint64_t now_ns, bool force, std::vector<std::pair<rw_reset, Origin>> &ready);
    // When the oldest held reset must be decided (0: none held).
    std::uint64_t next_deadline() const;
    std::size_t held() const { return held_count_; }

    // Does `sent` answer `received` (mirrored 4-tuple)?
    static bool pairs(const rw_reset &received, const rw_reset &sent);
    // Origin once no sent reset paired with it.
    static Origin without_peer_reset(const rw_reset &received);

  private:
    struct Key {
        std::uint8_t local[16], remote[16];
        std::uint16_t lport, rport;
        bool operator==(const Key &o) const;
    };
    static Key key_of(const rw_reset &r, bool mirrored);
    // 64-bit fingerprint of key_of(r, mirrored), never 0. The tables below keep
    // only fingerprints: a wrong pairing would need two live tuples among at
    // most 2 x 65,536 to collide in 64 bits (odds ~1e-14 per lookup).
    static std::uint64_t fingerprint(const rw_reset &r, bool mirrored);

    // Fingerprint -> u64, open addressing with linear probing and
    // backward-shift deletion (0 marks an empty slot). One cache line per
    // look-up, no allocation per entry: a storm of unpaired resets does
    // several look-ups per event (docs/PERFORMANCE.md, encoder).
    class FingerprintMap {
      public:
        std::uint64_t *find(std::uint64_t fp);
        void put(std::uint64_t fp, std::uint64_t value);
        void erase(std::uint64_t fp);
        std::size_t size() const { return size_; }

      private:
        struct Slot {
            std::uint64_t fp, value;
        };
        std::size_t slot_of(std::uint64_t fp) const { return fp & (slots_.size() - 1); }
        void grow();
        std::vector<Slot> slots_;
        std::size_t size_ = 0;
    };

    struct Held {
        rw_reset rec;
        std::uint64_t seq;
        bool done; // paired and released early
    };

    std::uint64_t window_ns_, hold_ns_;
    // Sent resets by tuple fingerprint, with their time; FIFO of insertion for
    // expiry.
    FingerprintMap sent_;
    std::deque<std::pair<std::uint64_t, std::uint64_t>> sent_order_; // (time, fingerprint)
    // Held received resets in arrival order; index by mirrored tuple -> seq.
    std::deque<Held> held_;
    std::uint64_t held_base_seq_ = 0; // seq of held_.front()
    std::size_t held_count_ = 0;      // not yet released
    FingerprintMap held_by_key_;
};

} // namespace rstwatch
