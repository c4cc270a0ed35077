// `rstwatch probe`'s search policy without sockets: a fake path (an oracle that
// knows the middlebox timeout and what it does) answers each connection, a
// fake clock advances by each round's cost. Checks that the search brackets
// the timeout within the requested precision, in few rounds, inside
// --max-time, and tells the server's own idle close apart.
#include <gtest/gtest.h>
#include <sstream>

#include "probe/probe.hpp"
#include "probe/probe_policy.hpp"
#include "cli/cli.hpp"
#include "util/error.hpp"

using namespace rstwatch;
using namespace rstwatch::probe;
using std::chrono::milliseconds;

namespace {

// A path that forgets after `timeout` (reset or drop), and optionally a
// server that closes idle connections itself after `server_close`. The
// keepalive timer fires `slack` late (fraction of T) as the timer wheel does.
struct FakePath {
    milliseconds timeout{350'000};
    Outcome death = Outcome::reset;
    std::optional<milliseconds> server_close;
    double slack = 0.05;
    milliseconds interval{1000};

    // What a connection with TCP_KEEPIDLE = t tells, and when (idle time).
    Observation answer(milliseconds t) const {
        const milliseconds probe_at(t.count() + (long long)(double(t.count()) * slack));
        if (server_close && *server_close < probe_at)
            return {t, Outcome::closed_by_server, *server_close};
        if (probe_at < timeout) return {t, Outcome::alive, probe_at + milliseconds(1)};
        if (death == Outcome::reset) return {t, Outcome::reset, probe_at};
        return {t, Outcome::drop, probe_at};
    }
};

struct SearchRun {
    SearchPolicy policy;
    milliseconds elapsed{0};
    std::vector<std::vector<milliseconds>> rounds;
};

// Drives the policy to the end: every round costs its longest still-needed
// connection, as in the engine (cancelled connections end early).
SearchRun run(PolicyConfig cfg, const FakePath &path, milliseconds max_time) {
    SearchRun r{SearchPolicy(cfg)};
    for (int guard = 0; guard < 100; ++guard) {
        auto ts = r.policy.next_round(max_time - r.elapsed);
        if (ts.empty()) break;
        r.rounds.push_back(ts);
        milliseconds cost{0};
        for (auto t : ts) {
            if (!r.policy.still_needed(t)) continue;
            Observation o = path.answer(t);
            r.policy.record(o);
            cost = std::max(cost, o.evidence + cfg.interval);
        }
        r.elapsed += cost;
    }
    return r;
}

} // namespace

TEST(ProbePolicy, FirstRoundSpreadsGeometricallyOverMinMax) {
    PolicyConfig cfg; // 10 s .. 2 h, 8 connections
    SearchPolicy p(cfg);
    auto ts = p.next_round(std::chrono::hours(3));
    ASSERT_EQ(ts.size(), 8u);
    EXPECT_EQ(ts.front(), milliseconds(10'000));
    EXPECT_EQ(ts.back(), milliseconds(7'200'000));
    for (std::size_t i = 1; i < ts.size(); ++i) {
        EXPECT_GT(ts[i], ts[i - 1]);
        EXPECT_EQ(ts[i].count() % 1000, 0); // TCP_KEEPIDLE takes whole seconds
        double ratio = double(ts[i].count()) / double(ts[i - 1].count());
        EXPECT_NEAR(ratio, 2.56, 0.1) << i;
    }
}

TEST(ProbePolicy, FindsAwsNatGatewayWithinFivePercentInFewRounds) {
    PolicyConfig cfg;
    cfg.precision.fraction = 0.05;
    FakePath path; // 350 s, RST
    SearchRun r = run(cfg, path, std::chrono::hours(3));
    auto b = r.policy.bracket();
    ASSERT_TRUE(b.lower && b.upper);
    EXPECT_LT(*b.lower, path.timeout);
    EXPECT_GE(*b.upper, path.timeout);
    EXPECT_LE((*b.upper - *b.lower).count(), 0.05 * double(b.lower->count()));
    EXPECT_EQ(r.policy.stop_reason(), StopReason::precision);
    EXPECT_TRUE(r.policy.precision_met());
    EXPECT_LE(r.rounds.size(), 4u);
    EXPECT_GT(r.policy.resets(), 0u);
    EXPECT_EQ(r.policy.drops(), 0u);
    // Rounds after the first stay inside the bracket known before them.
    for (std::size_t i = 1; i < r.rounds.size(); ++i)
        EXPECT_LE(r.rounds[i].size(), cfg.connections);
}

TEST(ProbePolicy, AbsolutePrecisionAndSilentDrop) {
    PolicyConfig cfg;
    cfg.precision.absolute = milliseconds(10'000);
    FakePath path;
    path.timeout = milliseconds(1'200'000); // gcp-cloud-nat
    path.death = Outcome::drop;
    SearchRun r = run(cfg, path, std::chrono::hours(4));
    auto b = r.policy.bracket();
    ASSERT_TRUE(b.lower && b.upper);
    EXPECT_LT(*b.lower, path.timeout);
    EXPECT_GE(*b.upper, path.timeout);
    EXPECT_LE(*b.upper - *b.lower, milliseconds(10'000));
    EXPECT_EQ(r.policy.resets(), 0u);
    EXPECT_GT(r.policy.drops(), 0u);
}

TEST(ProbePolicy, SecondResolutionEndsTheSearchForShortTimeouts) {
    // The lab: a 4 s firewall, probed from 1 s to 30 s.
    PolicyConfig cfg;
    cfg.min = milliseconds(1000);
    cfg.max = milliseconds(30'000);
    cfg.precision.fraction = 0.01; // unreachable with whole seconds
    FakePath path;
    path.timeout = milliseconds(4000);
    SearchRun r = run(cfg, path, std::chrono::minutes(5));
    auto b = r.policy.bracket();
    ASSERT_TRUE(b.lower && b.upper);
    EXPECT_LT(*b.lower, path.timeout);
    EXPECT_GE(*b.upper, path.timeout);
    EXPECT_EQ(r.policy.stop_reason(), StopReason::resolution);
    EXPECT_LT(*b.upper - *b.lower, milliseconds(2000));
    // Never the same T twice.
    std::vector<milliseconds> all;
    for (auto &round : r.rounds)
        all.insert(all.end(), round.begin(), round.end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

TEST(ProbePolicy, NothingDiesUpToMax) {
    PolicyConfig cfg;
    cfg.max = milliseconds(600'000);
    FakePath path;
    path.timeout = std::chrono::hours(10);
    SearchRun r = run(cfg, path, std::chrono::hours(1));
    EXPECT_EQ(r.policy.stop_reason(), StopReason::above_max);
    EXPECT_FALSE(r.policy.bracket().upper);
    EXPECT_GE(*r.policy.bracket().lower, milliseconds(600'000));
    EXPECT_EQ(r.rounds.size(), 1u);
}

TEST(ProbePolicy, TimeoutBelowMin) {
    PolicyConfig cfg;
    FakePath path;
    path.timeout = milliseconds(5000);
    SearchRun r = run(cfg, path, std::chrono::hours(3));
    EXPECT_EQ(r.policy.stop_reason(), StopReason::below_min);
    EXPECT_FALSE(r.policy.bracket().lower);
    EXPECT_EQ(*r.policy.bracket().upper, milliseconds(10'500)); // the 10 s probe, 5 % late
}

TEST(ProbePolicy, ServerClosingFirstIsNotAMiddlebox) {
    PolicyConfig cfg;
    cfg.min = milliseconds(1000);
    cfg.max = milliseconds(60'000);
    FakePath path;
    path.timeout = std::chrono::hours(1); // the firewall is far more patient
    path.server_close = milliseconds(5000);
    SearchRun r = run(cfg, path, std::chrono::minutes(10));
    EXPECT_EQ(r.policy.stop_reason(), StopReason::server_first);
    ASSERT_TRUE(r.policy.server_close());
    EXPECT_EQ(*r.policy.server_close(), milliseconds(5000));
    EXPECT_FALSE(r.policy.bracket().upper);
    EXPECT_EQ(r.policy.resets() + r.policy.drops(), 0u);
    // Connections beyond the server's close are implied, not needed.
    EXPECT_FALSE(r.policy.still_needed(milliseconds(6000)));
}

TEST(ProbePolicy, MiddleboxBelowAServerCloseIsStillMeasured) {
    PolicyConfig cfg;
    cfg.min = milliseconds(1000);
    cfg.max = milliseconds(120'000);
    cfg.precision.absolute = milliseconds(2000);
    FakePath path;
    path.timeout = milliseconds(20'000);
    path.server_close = milliseconds(60'000);
    SearchRun r = run(cfg, path, std::chrono::minutes(20));
    auto b = r.policy.bracket();
    ASSERT_TRUE(b.lower && b.upper);
    EXPECT_LT(*b.lower, path.timeout);
    EXPECT_GE(*b.upper, path.timeout);
}

TEST(ProbePolicy, MaxTimeCutsRoundsThatCannotFinish) {
    PolicyConfig cfg;
    SearchPolicy p(cfg);
    // 30 minutes: only idle times whose probe and interval fit are tried.
    auto ts = p.next_round(std::chrono::minutes(30));
    ASSERT_FALSE(ts.empty());
    for (auto t : ts)
        EXPECT_LE(p.round_cost(t), std::chrono::minutes(30));
    EXPECT_LT(ts.size(), 8u);
    SearchPolicy q(cfg);
    EXPECT_TRUE(q.next_round(milliseconds(5000)).empty());
    EXPECT_EQ(q.stop_reason(), StopReason::max_time);
}

TEST(ProbePolicy, LadderIsOneRoundOfExactlyThoseTimes) {
    PolicyConfig cfg;
    cfg.ladder = {milliseconds(30'000), milliseconds(60'000), milliseconds(120'000)};
    FakePath path;
    path.timeout = milliseconds(90'000);
    SearchRun r = run(cfg, path, std::chrono::hours(1));
    ASSERT_EQ(r.rounds.size(), 1u);
    EXPECT_EQ(r.rounds[0], cfg.ladder);
    EXPECT_EQ(r.policy.stop_reason(), StopReason::ladder);
    EXPECT_EQ(r.policy.bracket().upper, milliseconds(126'000));
}

TEST(ProbePolicy, NoAnswerAtAllIsNoConnection) {
    PolicyConfig cfg;
    SearchPolicy p(cfg);
    for (auto t : p.next_round(std::chrono::hours(3)))
        p.record({t, Outcome::error, milliseconds(0)});
    EXPECT_TRUE(p.next_round(std::chrono::hours(3)).empty());
    EXPECT_EQ(p.stop_reason(), StopReason::no_connection);
}

TEST(ProbePolicy, NoAnswerToALadderIsNoConnectionToo) {
    PolicyConfig cfg;
    cfg.ladder = {milliseconds(1000)};
    SearchPolicy p(cfg);
    for (auto t : p.next_round(std::chrono::hours(3)))
        p.record({t, Outcome::error, milliseconds(0)});
    EXPECT_TRUE(p.next_round(std::chrono::hours(3)).empty());
    EXPECT_EQ(p.stop_reason(), StopReason::no_connection);
}

TEST(ProbePolicy, ContradictingAnswersAreCountedNotUsed) {
    PolicyConfig cfg;
    SearchPolicy p(cfg);
    p.next_round(std::chrono::hours(3));
    p.record({milliseconds(60'000), Outcome::reset, milliseconds(60'100)});
    p.record({milliseconds(120'000), Outcome::alive, milliseconds(121'000)});
    EXPECT_EQ(p.inconsistent(), 1u);
    EXPECT_FALSE(p.bracket().lower);
    EXPECT_EQ(p.bracket().upper, milliseconds(60'100));
}

TEST(ProbePolicy, KeepaliveAdviceIsEightyPercentAndLeavesRoomForOneRetry) {
    auto a = advise_keepalive(milliseconds(350'000));
    EXPECT_EQ(a.idle_s, 280u);
    // 280 s * 9/8 timer slack = 315 s; the retry must still come before 350 s.
    EXPECT_EQ(a.interval_s, 34u);
    EXPECT_EQ(a.probes, 5u);
    auto small = advise_keepalive(milliseconds(3100));
    EXPECT_EQ(small.idle_s, 2u);
    EXPECT_EQ(small.interval_s, 1u);
    auto tiny = advise_keepalive(milliseconds(900));
    EXPECT_EQ(tiny.idle_s, 1u);
}

// ---- command line ----

namespace {
ProbeOptions parse_probe(std::vector<std::string> args) {
    std::ostringstream out;
    args.insert(args.begin(), "probe");
    auto r = parse_cli(args, out);
    EXPECT_TRUE(r.command);
    return std::get<ProbeOptions>(*r.command);
}
} // namespace

TEST(ProbeCli, Defaults) {
    auto o = parse_probe({"10.0.0.5:5432"});
    EXPECT_EQ(o.target, "10.0.0.5:5432");
    EXPECT_EQ(o.policy.connections, 8u);
    EXPECT_EQ(o.policy.min, milliseconds(10'000));
    EXPECT_EQ(o.policy.max, milliseconds(7'200'000));
    EXPECT_DOUBLE_EQ(o.policy.precision.fraction, 0.10);
    EXPECT_FALSE(o.policy.precision.absolute);
    EXPECT_EQ(o.policy.interval, milliseconds(1000));
    EXPECT_TRUE(o.policy.ladder.empty());
    EXPECT_FALSE(o.text);
}

TEST(ProbeCli, EveryFlag) {
    auto o =
        parse_probe({"[2001:db8::5]:443", "--connections", "4", "--precision", "10s", "--max-time",
                     "30m", "--min", "5s", "--max", "10m", "--interval", "2s", "--format", "text"});
    EXPECT_EQ(o.policy.connections, 4u);
    EXPECT_EQ(o.policy.precision.absolute, milliseconds(10'000));
    EXPECT_EQ(o.policy.precision.text, "10s");
    EXPECT_EQ(o.max_time, milliseconds(1'800'000));
    EXPECT_EQ(o.policy.min, milliseconds(5000));
    EXPECT_EQ(o.policy.max, milliseconds(600'000));
    EXPECT_EQ(o.policy.interval, milliseconds(2000));
    EXPECT_TRUE(o.text);
    auto p = parse_probe({"h:1", "--precision", "5%", "--ladder", "60s,30s,2m,30s"});
    EXPECT_DOUBLE_EQ(p.policy.precision.fraction, 0.05);
    EXPECT_EQ(p.policy.ladder,
              (std::vector<milliseconds>{milliseconds(30'000), milliseconds(60'000),
                                         milliseconds(120'000)}));
}

TEST(ProbeCli, BadTargetsNameTheTarget) {
    for (const char *t : {"10.0.0.5", "10.0.0.5:0", "10.0.0.5:65536", "::1:80", "[::1]80", ":80"}) {
        try {
            ProbeOptions o;
            o.target = t;
            run_probe(o);
            ADD_FAILURE() << t << " accepted";
        } catch (const UsageError &e) {
            EXPECT_NE(std::string(e.what()).find(std::string("'") + t + "'"), std::string::npos)
                << e.what();
        }
    }
}
