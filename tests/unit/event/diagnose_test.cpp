#include <gtest/gtest.h>

#include "../fixtures.hpp"
#include "event/diagnose.hpp"

using namespace rstwatch;
using std::chrono::milliseconds;

namespace {
DiagnoseConfig with_middlebox(int secs) {
    return DiagnoseConfig::make(milliseconds(secs * 1000), std::nullopt);
}
} // namespace

TEST(Diagnose, ThresholdDefaults) {
    EXPECT_EQ(DiagnoseConfig::make(std::nullopt, std::nullopt).idle_threshold, milliseconds(60000));
    EXPECT_EQ(DiagnoseConfig::make(milliseconds(4000), std::nullopt).idle_threshold,
              milliseconds(3600));
    EXPECT_EQ(DiagnoseConfig::make(milliseconds(4000), milliseconds(100)).idle_threshold,
              milliseconds(100));
}

TEST(Diagnose, KeepaliveDisabledAfterIdlePastThreshold) {
    rw_reset r = fixtures::reset();
    r.tm.idle_ms = 7000;
    auto d = diagnose_reset(r, "", with_middlebox(4));
    EXPECT_EQ(d.verdict, Verdict::keepalive_disabled);
    EXPECT_NE(d.explanation.find("SO_KEEPALIVE off"), std::string::npos) << d.explanation;
    EXPECT_NE(d.explanation.find("4s"), std::string::npos) << d.explanation;
}

TEST(Diagnose, NotIdleBelowThreshold) {
    rw_reset r = fixtures::reset();
    r.tm.idle_ms = 1000;
    EXPECT_EQ(diagnose_reset(r, "", with_middlebox(4)).verdict, Verdict::not_idle);
    r.tm.idle_ms = 3599;
    EXPECT_EQ(diagnose_reset(r, "", with_middlebox(4)).verdict, Verdict::not_idle);
    r.tm.idle_ms = 3600;
    EXPECT_EQ(diagnose_reset(r, "", with_middlebox(4)).verdict, Verdict::keepalive_disabled);
}

TEST(Diagnose, KeepaliveTooSlowVersusIdleAndVersusMiddlebox) {
    rw_reset r = fixtures::reset();
    r.ka.enabled = 1;
    r.ka.idle_s = 10; // probes after 10 s, but the box forgets after 4 s
    r.tm.idle_ms = 7000;
    auto d = diagnose_reset(r, "", with_middlebox(4));
    EXPECT_EQ(d.verdict, Verdict::keepalive_too_slow);
    EXPECT_NE(d.explanation.find("middlebox timeout of 4s"), std::string::npos) << d.explanation;

    // No middlebox given: keepalive idle not shorter than the observed idle.
    r.tm.idle_ms = 70'000;
    r.ka.idle_s = 7200;
    EXPECT_EQ(diagnose_reset(r, "", DiagnoseConfig{}).verdict, Verdict::keepalive_too_slow);

    // Fast keepalive and still reset: not explained by idleness.
    r.ka.idle_s = 2;
    r.tm.idle_ms = 7000;
    EXPECT_EQ(diagnose_reset(r, "", with_middlebox(4)).verdict, Verdict::unknown);
}

// Measured in the lab: keepalive idle 5 s, firewall timeout 4 s; the first
// probe leaves ~230 ms late (timer wheel) and the firewall answers it with an
// RST, so the idle time at the reset is a little past the keepalive idle.
TEST(Diagnose, ResetAnsweringTheFirstProbeIsTooSlowWithoutKnownTimeout) {
    rw_reset r = fixtures::reset();
    r.ka.enabled = 1;
    r.ka.idle_s = 5;
    r.ka.interval_s = 1;
    r.tm.idle_ms = 5228;
    auto cfg = DiagnoseConfig::make(std::nullopt, milliseconds(3000));
    auto d = diagnose_reset(r, "", cfg);
    EXPECT_EQ(d.verdict, Verdict::keepalive_too_slow);
    EXPECT_NE(d.explanation.find("first probe"), std::string::npos) << d.explanation;
    EXPECT_NE(d.explanation.find("shorter than 5s"), std::string::npos) << d.explanation;

    // Past the first probe's window (5 s + 5/8 s + 1 s): several probes went
    // unanswered, which keepalive being slow does not explain.
    r.tm.idle_ms = 6700;
    EXPECT_EQ(diagnose_reset(r, "", cfg).verdict, Verdict::unknown);
    r.tm.idle_ms = 6600;
    EXPECT_EQ(diagnose_reset(r, "", cfg).verdict, Verdict::keepalive_too_slow);

    // A known timeout above the keepalive idle decides: not too slow.
    auto known = DiagnoseConfig::make(milliseconds(8000), milliseconds(3000));
    EXPECT_EQ(diagnose_reset(r, "", known).verdict, Verdict::unknown);
}

TEST(Diagnose, NoSocketAndRefused) {
    rw_reset r = fixtures::reset(RW_DIR_SENT);
    r.flags = RW_F_NO_SOCKET;
    EXPECT_EQ(diagnose_reset(r, "NO_SOCKET", {}).verdict, Verdict::no_socket);
    rw_reset refused = fixtures::reset(RW_DIR_RECEIVED);
    refused.ep.state = 2; // SYN_SENT
    EXPECT_EQ(diagnose_reset(refused, "", {}).verdict, Verdict::no_socket);
}

TEST(Diagnose, LocalAbortByActiveFlagOrReason) {
    rw_reset r = fixtures::reset(RW_DIR_SENT);
    r.flags |= RW_F_ACTIVE;
    EXPECT_EQ(diagnose_reset(r, "", with_middlebox(4)).verdict, Verdict::local_abort);
    r.flags &= ~RW_F_ACTIVE;
    EXPECT_EQ(diagnose_reset(r, "TCP_ABORT_ON_LINGER", with_middlebox(4)).verdict,
              Verdict::local_abort);
    auto d = diagnose_reset(r, "TCP_KEEPALIVE_TIMEOUT", with_middlebox(4));
    EXPECT_EQ(d.verdict, Verdict::local_abort);
    EXPECT_NE(d.explanation.find("keepalive probes"), std::string::npos);
    // A received RST is never this host's abort, whatever the flags say.
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    rx.flags |= RW_F_ACTIVE;
    EXPECT_EQ(diagnose_reset(rx, "", with_middlebox(4)).verdict, Verdict::keepalive_disabled);
}

TEST(Diagnose, TimewaitSocketIsUnknown) {
    rw_reset r = fixtures::reset(RW_DIR_SENT);
    r.flags = 0;
    r.ep.state = 6;
    EXPECT_EQ(diagnose_reset(r, "", with_middlebox(4)).verdict, Verdict::unknown);
}

TEST(Diagnose, TimeoutUsesIdleBeforeTheUnansweredWrite) {
    rw_close c = fixtures::close_rec(RW_CAUSE_RETRANSMIT);
    c.tm.idle_ms = 5000;
    EXPECT_EQ(diagnose_timeout(c, with_middlebox(4)).verdict, Verdict::keepalive_disabled);
    c.ka.enabled = 1;
    c.ka.idle_s = 10;
    EXPECT_EQ(diagnose_timeout(c, with_middlebox(4)).verdict, Verdict::keepalive_too_slow);
    c.tm.idle_ms = 100;
    EXPECT_EQ(diagnose_timeout(c, with_middlebox(4)).verdict, Verdict::not_idle);
}

TEST(Diagnose, UnansweredProbeBeforeTheTimedOutWriteIsTooSlow) {
    rw_close c = fixtures::close_rec(RW_CAUSE_RETRANSMIT);
    c.ka.enabled = 1;
    c.ka.idle_s = 5;
    c.ka.interval_s = 10;
    c.tm.idle_ms = 20000; // probe at 5 s dropped, the write at 20 s retransmitted
    auto cfg = DiagnoseConfig::make(std::nullopt, milliseconds(3000));
    EXPECT_EQ(diagnose_timeout(c, cfg).verdict, Verdict::unknown);
    c.probes_out = 1;
    auto d = diagnose_timeout(c, cfg);
    EXPECT_EQ(d.verdict, Verdict::keepalive_too_slow);
    EXPECT_NE(d.explanation.find("1 probe(s)"), std::string::npos) << d.explanation;
}

TEST(Diagnose, VerdictNamesRoundTrip) {
    for (auto v : {Verdict::keepalive_disabled, Verdict::keepalive_too_slow, Verdict::not_idle,
                   Verdict::no_socket, Verdict::local_abort, Verdict::unknown})
        EXPECT_EQ(parse_verdict(to_string(v)), v);
    EXPECT_FALSE(parse_verdict("bogus"));
}

namespace {
// The sent reset that answers fixtures::reset(RW_DIR_RECEIVED).
rw_reset peer_sent(std::uint64_t ts) {
    rw_reset tx = fixtures::reset(RW_DIR_SENT);
    std::swap(tx.ep.local_addr, tx.ep.remote_addr);
    std::swap(tx.ep.local_port, tx.ep.remote_port);
    tx.hdr.ts_ns = ts;
    return tx;
}
using Ready = std::vector<std::pair<rw_reset, Origin>>;
} // namespace

TEST(Origin, SentBeforeReceivedPairs) {
    OriginTracker t;
    Ready ready;
    rw_reset tx = peer_sent(1'000'000'000);
    t.on_sent(tx, ready);
    EXPECT_TRUE(ready.empty());
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    rx.hdr.ts_ns = tx.hdr.ts_ns + 1000;
    EXPECT_TRUE(OriginTracker::pairs(rx, tx));
    EXPECT_EQ(t.on_received(rx), Origin::peer);
    // Consumed: the same tuple again waits for a new sent reset.
    EXPECT_FALSE(t.on_received(rx).has_value());
    EXPECT_EQ(t.held(), 1u);
}

TEST(Origin, ReceivedBeforeSentIsHeldThenPaired) {
    OriginTracker t;
    Ready ready;
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    EXPECT_FALSE(t.on_received(rx).has_value());
    EXPECT_EQ(t.next_deadline(), rx.hdr.ts_ns + 100'000'000);
    t.on_sent(peer_sent(rx.hdr.ts_ns + 5000), ready);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].second, Origin::peer);
    EXPECT_EQ(ready[0].first.ep.local_port, rx.ep.local_port);
    EXPECT_EQ(t.held(), 0u);
    ready.clear();
    t.release(rx.hdr.ts_ns + 1'000'000'000, false, ready);
    EXPECT_TRUE(ready.empty()); // already released with its peer
    EXPECT_EQ(t.next_deadline(), 0u);
}

TEST(Origin, HeldResetIsDecidedWithoutAPeerAfterTheWait) {
    OriginTracker t;
    Ready ready;
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    rx.flags |= RW_F_PEER_LOCAL;
    EXPECT_FALSE(t.on_received(rx).has_value());
    t.release(rx.hdr.ts_ns + 50'000'000, false, ready);
    EXPECT_TRUE(ready.empty());
    t.release(rx.hdr.ts_ns + 100'000'000, false, ready);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].second, Origin::middlebox);
    rw_reset other = fixtures::reset(RW_DIR_RECEIVED);
    other.ep.local_port = 1;
    EXPECT_FALSE(t.on_received(other).has_value());
    ready.clear();
    t.release(0, /*force=*/true, ready);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].second, Origin::unknown);
}

TEST(Origin, UnpairedReceivedIsMiddleboxOnlyWithLocalPeer) {
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    EXPECT_EQ(OriginTracker::without_peer_reset(rx), Origin::unknown);
    rx.flags |= RW_F_PEER_LOCAL;
    EXPECT_EQ(OriginTracker::without_peer_reset(rx), Origin::middlebox);
}

TEST(Origin, OldSentResetsExpire) {
    OriginTracker t(std::chrono::seconds(1));
    Ready ready;
    rw_reset tx = peer_sent(1'000'000'000);
    t.on_sent(tx, ready);
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    rx.hdr.ts_ns = tx.hdr.ts_ns + 2'000'000'000ull;
    EXPECT_FALSE(t.on_received(rx).has_value());
}

TEST(Origin, AStormOfUnpairedResetsStaysBoundedAndCheap) {
    // Sent resets to remote peers never pair: memory must stay bounded and the
    // cost per event constant (a rescan per event would take minutes here).
    OriginTracker t;
    Ready ready;
    rw_reset tx = peer_sent(1);
    for (std::uint32_t i = 0; i < 1'000'000; ++i) {
        tx.hdr.ts_ns = 1 + i;
        tx.ep.local_port = std::uint16_t(i);
        tx.ep.remote_port = std::uint16_t(i >> 16);
        t.on_sent(tx, ready);
    }
    EXPECT_TRUE(ready.empty());
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    for (std::uint32_t i = 0; i < 200'000; ++i) {
        rx.hdr.ts_ns = 10 + i;
        rx.ep.local_port = std::uint16_t(i);
        rx.ep.remote_port = std::uint16_t(7 + (i >> 16));
        (void)t.on_received(rx);
    }
    EXPECT_LE(t.held(), OriginTracker::kMaxEntries);
}

TEST(Origin, V4AndMappedV6Pair) {
    rw_reset tx = fixtures::reset(RW_DIR_SENT);
    std::swap(tx.ep.local_addr, tx.ep.remote_addr);
    std::swap(tx.ep.local_port, tx.ep.remote_port);
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    // The receiver is a dual-stack v6 socket seeing v4-mapped addresses.
    rx.ep.family = AF_INET6;
    std::uint8_t l[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                 r[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(l + 12, fixtures::reset().ep.local_addr, 4);
    std::memcpy(r + 12, fixtures::reset().ep.remote_addr, 4);
    std::memcpy(rx.ep.local_addr, l, 16);
    std::memcpy(rx.ep.remote_addr, r, 16);
    EXPECT_TRUE(OriginTracker::pairs(rx, tx));
}
