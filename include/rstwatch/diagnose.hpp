// Diagnose stage: a verdict and a one-sentence explanation for every reset and
// timeout, and who sent a received RST. Pure logic, unit-tested without BPF.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

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
// host, any network namespace). Remembers sent resets for `window`. The two
// can arrive in either order: an abortive close traces its RST after
// transmitting it, and on loopback/veth the receiver runs nested in that
// transmit, so callers hold a received reset briefly before deciding.
class OriginTracker {
  public:
    explicit OriginTracker(std::chrono::milliseconds window = std::chrono::seconds(5))
        : window_ns_(std::uint64_t(window.count()) * 1'000'000) {}
    void on_sent(const rw_reset &r);
    // The peer's sent reset was already seen (consumes it).
    bool matched_sent(const rw_reset &received);
    // Does `sent` answer `received` (mirrored 4-tuple)?
    static bool pairs(const rw_reset &received, const rw_reset &sent);
    // Origin once no sent reset has paired with it.
    static Origin without_peer_reset(const rw_reset &received);

  private:
    struct Key {
        std::uint8_t local[16], remote[16];
        std::uint16_t lport, rport;
        bool operator==(const Key &o) const;
    };
    struct KeyHash {
        std::size_t operator()(const Key &k) const;
    };
    static Key key_of(const rw_reset &r, bool mirrored);
    void expire(std::uint64_t now_ns);

    std::uint64_t window_ns_;
    std::uint64_t last_expire_ns_ = 0;
    std::unordered_map<Key, std::uint64_t, KeyHash> sent_;
};

} // namespace rstwatch
