// The trace data path after the ring buffer as a whole: raw records in (as
// the BPF side writes them), NDJSON lines out (decode -> enrich -> diagnose ->
// filter -> rate limit -> format -> sink).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../fixtures.hpp"
#include "trace/pipeline.hpp"

using namespace rstwatch;
using json = nlohmann::json;

namespace {

class MemorySink final : public Sink {
  public:
    explicit MemorySink(std::string &to) : to_(to) {}
    WriteResult write(std::string_view lines) override {
        to_.append(lines);
        return {WriteStatus::ok, lines.size()};
    }

  private:
    std::string &to_;
};

// A pipeline as `rstwatch trace` builds one, writing into `written`.
struct Session {
    explicit Session(std::optional<Verdict> verdict = std::nullopt,
                     std::uint32_t emit = RW_EMIT_RESET | RW_EMIT_TIMEOUT | RW_EMIT_CONNECTION,
                     std::uint64_t count = 0)
        : out(make_json_formatter("host-a"), std::make_unique<MemorySink>(written)),
          cgroups("/nonexistent-cgroup-root"),
          pipe(PipelineConfig{DiagnoseConfig::make(std::chrono::minutes(5), std::nullopt), verdict,
                              emit, count, 0},
               out, cgroups, kernel, clock) {}

    template <class Rec> int feed(const Rec &r) { return pipe.on_sample(&r, sizeof(r)); }

    std::vector<json> lines() {
        out.flush();
        std::vector<json> v;
        std::size_t pos = 0, nl;
        while ((nl = written.find('\n', pos)) != std::string::npos) {
            v.push_back(json::parse(written.substr(pos, nl - pos)));
            pos = nl + 1;
        }
        return v;
    }

    std::string written;
    Output out;
    CgroupResolver cgroups;
    KernelFacts kernel;
    WallClock clock;
    TracePipeline pipe;
};

// The peer's side of fixtures::reset(): the mirrored 4-tuple, on this host.
rw_reset peer_sent_reset() {
    rw_reset s = fixtures::reset(RW_DIR_SENT);
    fixtures::set_v4(s.ep.local_addr, "10.0.2.2");
    fixtures::set_v4(s.ep.remote_addr, "10.0.1.2");
    s.ep.local_port = 5000;
    s.ep.remote_port = 40000;
    s.owner = fixtures::owner(5151, "server");
    s.hdr.ts_ns += 1000;
    return s;
}

} // namespace

TEST(TracePipeline, ReceivedResetWaitsForThePeerAndIsPairedWithIt) {
    Session s;
    rw_reset received = fixtures::reset(RW_DIR_RECEIVED);
    EXPECT_EQ(s.feed(received), 0);
    // Held (up to 100 ms) for the peer's sent reset: nothing written yet.
    EXPECT_TRUE(s.lines().empty());
    EXPECT_NE(s.pipe.pending_deadline(), 0u);

    EXPECT_EQ(s.feed(peer_sent_reset()), 0);
    auto ls = s.lines();
    ASSERT_EQ(ls.size(), 2u);
    EXPECT_EQ(ls[0]["event"], "tcp_reset");
    EXPECT_EQ(ls[0]["host"], "host-a");
    EXPECT_EQ(ls[0]["direction"], "received");
    EXPECT_EQ(ls[0]["origin"], "peer");
    EXPECT_EQ(ls[0]["process"]["pid"], 4242);
    EXPECT_EQ(ls[0]["local"], (json{{"addr", "10.0.1.2"}, {"port", 40000}}));
    EXPECT_EQ(ls[1]["event"], "tcp_reset");
    EXPECT_EQ(ls[1]["direction"], "sent");
    EXPECT_EQ(ls[1]["origin"], "local");
    EXPECT_EQ(ls[1]["process"]["pid"], 5151);
    EXPECT_EQ(s.pipe.resets(), 2u);
    EXPECT_EQ(s.pipe.pending_deadline(), 0u);
}

TEST(TracePipeline, UnpairedReceivedResetIsWrittenWhenItsWaitEnds) {
    Session s;
    s.feed(fixtures::reset(RW_DIR_RECEIVED));
    s.pipe.flush_pending(0, /*force=*/true);
    auto ls = s.lines();
    ASSERT_EQ(ls.size(), 1u);
    EXPECT_EQ(ls[0]["direction"], "received");
    EXPECT_EQ(ls[0]["verdict"], "not_idle"); // idle 7 s against a 5 min middlebox
    EXPECT_EQ(ls[0]["idle_ms"], 7000);
}

TEST(TracePipeline, TimeoutAndConnectionClosedFromOneCloseRecord) {
    Session s;
    rw_close c = fixtures::close_rec(RW_CAUSE_RETRANSMIT);
    s.feed(c);
    auto ls = s.lines();
    ASSERT_EQ(ls.size(), 2u);
    EXPECT_EQ(ls[0]["event"], "tcp_timeout");
    EXPECT_EQ(ls[0]["process"]["pid"], 4242);
    EXPECT_EQ(ls[1]["event"], "connection_closed");
    EXPECT_EQ(s.pipe.timeouts(), 1u);
    EXPECT_EQ(s.out.emitted(), 2u);
}

TEST(TracePipeline, EventsNotAskedForAreNotWritten) {
    Session s(std::nullopt, RW_EMIT_RESET);
    s.feed(fixtures::close_rec(RW_CAUSE_RETRANSMIT));
    EXPECT_TRUE(s.lines().empty());
    EXPECT_EQ(s.pipe.timeouts(), 0u);
}

TEST(TracePipeline, VerdictFilterDropsOtherVerdictsAndEventsWithoutOne) {
    Session s(Verdict::keepalive_disabled);
    s.feed(fixtures::reset(RW_DIR_SENT)); // not_idle: filtered
    s.feed(fixtures::close_rec());        // connection_closed has no verdict: filtered
    EXPECT_TRUE(s.lines().empty());
    EXPECT_EQ(s.pipe.filtered(), 2u);
    EXPECT_EQ(s.pipe.stats().filtered_user, 2u);
    // Counted by verdict before the filter (the metrics see every reset).
    EXPECT_EQ(s.pipe.stats().resets[0][std::size_t(Verdict::not_idle)], 1u);
}

TEST(TracePipeline, MalformedRecordIsCountedNotWritten) {
    Session s;
    rw_reset r = fixtures::reset(RW_DIR_SENT);
    EXPECT_EQ(s.pipe.on_sample(&r, sizeof(r) - 1), 0);
    EXPECT_TRUE(s.lines().empty());
    EXPECT_EQ(s.pipe.malformed(), 1u);
    EXPECT_EQ(s.pipe.stats().malformed, 1u);
}

TEST(TracePipeline, CountStopsTheSessionAfterThatManyEvents) {
    Session s(std::nullopt, RW_EMIT_RESET, 1);
    EXPECT_EQ(s.feed(fixtures::reset(RW_DIR_SENT)), -1);
    EXPECT_TRUE(s.pipe.done());
    EXPECT_EQ(s.feed(fixtures::reset(RW_DIR_SENT)), -1);
    EXPECT_EQ(s.lines().size(), 1u);
}
