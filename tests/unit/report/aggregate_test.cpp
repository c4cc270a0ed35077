// `rstwatch report` aggregation on hand-made NDJSON: per-process counts,
// histogram buckets, middlebox deaths, both-ends pairing (same host, two
// hosts, v4 / v4-mapped / v6), malformed-line accounting, bounded state.
#include <gtest/gtest.h>

#include "../report_fixtures.hpp"
#include "report/format.hpp"

using namespace rstwatch;
using rf::run;

namespace {

const ProcessReport *find_proc(const ReportResult &r, const std::string &host, std::uint32_t pid) {
    for (const auto &p : r.data.processes)
        if (p.pid == pid && r.data.hosts[p.host].name == host) return &p;
    return nullptr;
}

std::uint64_t bucket_count(const ReportResult &r, std::uint64_t ge_ms) {
    return r.data.histogram.all[IdleHistogram::bucket(ge_ms)];
}

} // namespace

TEST(ReportHistogram, Log2Buckets) {
    EXPECT_EQ(IdleHistogram::bucket(0), 0u);
    EXPECT_EQ(IdleHistogram::bucket(1), 1u);
    EXPECT_EQ(IdleHistogram::bucket(2), 2u);
    EXPECT_EQ(IdleHistogram::bucket(3), 2u);
    EXPECT_EQ(IdleHistogram::bucket(1023), 10u);
    EXPECT_EQ(IdleHistogram::bucket(1024), 11u);
    EXPECT_EQ(IdleHistogram::bucket(UINT64_MAX), 64u);
    EXPECT_EQ(IdleHistogram::lower(11), 1024u);
    EXPECT_EQ(IdleHistogram::upper(11), 2048u);
    EXPECT_EQ(IdleHistogram::lower(0), 0u);
    EXPECT_EQ(IdleHistogram::upper(0), 1u);
}

TEST(ReportHistogram, CountsEveryDeathWithAKnownIdle) {
    std::string in;
    const std::int64_t idles[] = {0, 1, 3, 4095, 4096, 7000, 7000, 350'000};
    int port = 40000;
    for (auto ms : idles) {
        rf::Reset r;
        r.local.port = port++;
        r.idle_ms = ms;
        in += rf::reset(r);
    }
    rf::Reset unknown;
    unknown.local.port = port++;
    unknown.idle_ms = -1;
    in += rf::reset(unknown);
    rf::Timeout t;
    t.local.port = port++;
    t.idle_ms = 5000;
    in += rf::timeout(t);

    auto r = run(in);
    const IdleHistogram &h = r.data.histogram;
    EXPECT_EQ(h.all[0], 1u);
    EXPECT_EQ(h.all[1], 1u);
    EXPECT_EQ(h.all[2], 1u);                // 3 ms in [2, 4)
    EXPECT_EQ(h.all[12], 1u);               // 4095 in [2048, 4096)
    EXPECT_EQ(h.all[13], 4u);               // 4096, 7000, 7000, timeout 5000 in [4096, 8192)
    EXPECT_EQ(bucket_count(r, 262144), 1u); // 350 s
    EXPECT_EQ(h.all_unknown, 1u);
    EXPECT_EQ(h.middlebox[13], 4u);
    EXPECT_EQ(h.middlebox_unknown, 1u);
}

TEST(ReportAggregate, PerProcessCountsByVerdict) {
    std::string in;
    rf::Reset a; // middlebox, keepalive off
    in += rf::reset(a);
    rf::Reset b;
    b.local.port = 40001;
    b.verdict = "not_idle";
    b.origin = "peer";
    b.idle_ms = 20;
    in += rf::reset(b);
    rf::Reset c; // another process on the same host, sent a reset
    c.process = {99, "nginx"};
    c.local = {"10.0.0.1", 443};
    c.remote = {"10.9.9.9", 51000};
    c.sent = true;
    c.verdict = "local_abort";
    c.origin = "local";
    in += rf::reset(c);
    rf::Timeout t;
    t.local.port = 40002;
    t.verdict = "keepalive_too_slow";
    t.keepalive = {true, 7200};
    in += rf::timeout(t);
    rf::Sock s; // a closed connection with keepalive on
    s.local.port = 40003;
    s.keepalive = {true, 60};
    in += rf::closed(s);

    auto r = run(in);
    const ProcessReport *client = find_proc(r, "h1", 4242);
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->comm, "client");
    EXPECT_EQ(client->connections(), 4u);
    EXPECT_EQ(client->without_keepalive(), 2u); // a and b; t had keepalive (too slow)
    EXPECT_EQ(client->resets_received, 2u);
    EXPECT_EQ(client->resets[std::size_t(Verdict::keepalive_disabled)], 1u);
    EXPECT_EQ(client->resets[std::size_t(Verdict::not_idle)], 1u);
    EXPECT_EQ(client->timeouts[std::size_t(Verdict::keepalive_too_slow)], 1u);
    EXPECT_EQ(client->mb_deaths, 2u); // the middlebox reset and the too-slow timeout
    EXPECT_EQ(client->mb_ka_off, 1u);
    EXPECT_EQ(client->mb_ka_on, 1u);
    EXPECT_EQ(client->mb_min_idle_ms, 7000u);
    const ProcessReport *nginx = find_proc(r, "h1", 99);
    ASSERT_NE(nginx, nullptr);
    EXPECT_EQ(nginx->resets_sent, 1u);
    EXPECT_EQ(nginx->resets[std::size_t(Verdict::local_abort)], 1u);
    EXPECT_EQ(nginx->mb_deaths, 0u);
    // Worst first: the client (middlebox deaths) before nginx.
    ASSERT_EQ(r.data.worst_first.size(), 2u);
    EXPECT_EQ(r.data.processes[r.data.worst_first[0]].pid, 4242u);
    EXPECT_EQ(r.data.resets, 3u);
    EXPECT_EQ(r.data.timeouts, 1u);
    EXPECT_EQ(r.data.middlebox.total, 2u);
}

TEST(ReportAggregate, ResetsToClosedPortsAreNotConnections) {
    std::string in;
    for (int i = 0; i < 100; ++i) {
        rf::Reset r;
        r.process = {};
        r.keepalive.reset();
        r.idle_ms = -1;
        r.sent = true;
        r.verdict = "no_socket";
        r.origin = "local";
        r.local.port = 1 + i;
        in += rf::reset(r);
    }
    auto r = run(in);
    EXPECT_EQ(r.data.connections, 0u);
    EXPECT_EQ(r.data.resets, 100u);
    ASSERT_EQ(r.data.processes.size(), 1u);
    EXPECT_FALSE(r.data.processes[0].owned);
    EXPECT_EQ(r.data.processes[0].resets[std::size_t(Verdict::no_socket)], 100u);
}

TEST(ReportAggregate, ProcessSummariesAddUpAcrossSessionsAndRepeatsCountOnce) {
    std::string in = rf::summary("h1", 1000, {7, "java"}, 10, 4) +
                     rf::summary("h1", 2000, {7, "java"}, 5, 5) +
                     rf::summary("h1", 1000, {7, "java"}, 10, 4); // the first, again
    auto r = run(in);
    const ProcessReport *p = find_proc(r, "h1", 7);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->connections(), 15u);
    EXPECT_EQ(p->without_keepalive(), 9u);
    EXPECT_EQ(r.data.duplicates, 1u);
}

TEST(ReportAggregate, AReusedFourTupleIsANewConnection) {
    rf::Sock s;
    s.at_ms = 0;
    std::string in = rf::closed(s);
    s.at_ms = 60'000; // same 4-tuple, a minute later: another connection
    s.keepalive = {true, 30};
    in += rf::audit(s);
    auto r = run(in);
    const ProcessReport *p = find_proc(r, "h1", 4242);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->connections(), 2u);
    EXPECT_EQ(p->without_keepalive(), 1u);
    EXPECT_EQ(r.data.connections, 2u);
}

TEST(ReportAggregate, ResetThenItsCloseIsOneConnection) {
    rf::Reset r;
    r.at_ms = 1000;
    rf::Sock s;
    s.at_ms = 1005;
    auto out = run(rf::reset(r) + rf::closed(s));
    EXPECT_EQ(out.data.connections, 1u);
}

TEST(ReportAggregate, AReportFedBackInIsIgnoredAndAddsNoHost) {
    std::string in = rf::reset({});
    std::string earlier;
    format_report_json(run(in), "reporter", 0, earlier);
    auto r = run(earlier + in);
    EXPECT_EQ(r.data.ignored, 6u); // input, summary, finding, process, histogram, host
    EXPECT_EQ(r.problems, (std::array<std::uint64_t, kLineProblemCount>{}));
    ASSERT_EQ(r.data.hosts.size(), 1u);
    EXPECT_EQ(r.data.hosts[0].name, "h1");
    EXPECT_EQ(r.data.resets, 1u);
}

TEST(ReportAggregate, LostEventsArePerHost) {
    std::string in =
        rf::head("lost", "h1", 0) + R"(,"reason":"ringbuf_full","lost":3,"total":3})" + "\n" +
        rf::head("lost", "h2", 0) + R"(,"reason":"ringbuf_full","lost":4,"total":4})" + "\n" +
        rf::head("lost", "h1", 1) + R"(,"reason":"ringbuf_full","lost":2,"total":5})" + "\n";
    auto r = run(in);
    ASSERT_EQ(r.data.hosts.size(), 2u);
    EXPECT_EQ(r.data.hosts[0].name, "h1");
    EXPECT_EQ(r.data.hosts[0].lost, 5u);
    EXPECT_EQ(r.data.hosts[1].lost, 4u);
}

// ---- both ends ----

TEST(ReportPairs, TwoHostsOneSideFixedAndMiddleboxOriginInferred) {
    // The client on host "app" gets an RST whose sender it cannot see; the
    // server's host "db" logged the same connection (mirrored) and sent none.
    rf::Reset client;
    client.host = "app";
    client.origin = "unknown";
    client.local = {"10.0.0.1", 40000};
    client.remote = {"10.0.0.2", 5432};
    rf::Sock server;
    server.host = "db";
    server.process = {501, "postgres"};
    server.local = {"10.0.0.2", 5432};
    server.remote = {"10.0.0.1", 40000};
    server.keepalive = {true, 60};
    auto r = run(rf::reset(client) + rf::audit(server));

    ASSERT_EQ(r.data.pair_counts.total, 1u);
    EXPECT_EQ(r.data.pair_counts.one_side, 1u);
    ASSERT_EQ(r.data.pairs.size(), 1u);
    const PairReport &p = r.data.pairs[0];
    EXPECT_EQ(p.status, PairStatus::one_side);
    const PairSide &app = r.data.hosts[p.a.host].name == "app" ? p.a : p.b;
    const PairSide &db = r.data.hosts[p.a.host].name == "app" ? p.b : p.a;
    EXPECT_EQ(r.data.processes[app.proc].comm, "client");
    EXPECT_EQ(app.ka, KaState::off);
    EXPECT_EQ(app.death, DeathKind::reset_received);
    EXPECT_EQ(r.data.processes[db.proc].comm, "postgres");
    EXPECT_EQ(db.ka, KaState::on);
    EXPECT_EQ(db.ka_idle_s, 60u);
    EXPECT_EQ(db.death, DeathKind::none);
    EXPECT_NE(p.a.host, p.b.host);

    EXPECT_EQ(r.data.middlebox.total, 1u);
    EXPECT_EQ(r.data.middlebox.inferred, 1u);
    EXPECT_EQ(r.data.unresolved_resets, 0u);
    ASSERT_FALSE(r.findings.empty());
    EXPECT_EQ(r.findings[0].kind, FindingKind::middlebox_idle_timeout);
    EXPECT_EQ(r.findings[1].kind, FindingKind::one_side_keepalive);
}

TEST(ReportPairs, PeerThatSentTheResetIsNotAMiddlebox) {
    rf::Reset client;
    client.host = "app";
    client.origin = "unknown";
    client.verdict = "not_idle";
    client.idle_ms = 3;
    rf::Reset server;
    server.host = "db";
    server.process = {501, "postgres"};
    server.local = {"10.0.0.2", 5432};
    server.remote = {"10.0.0.1", 40000};
    server.sent = true;
    server.origin = "local";
    server.verdict = "local_abort";
    auto r = run(rf::reset(client) + rf::reset(server));
    EXPECT_EQ(r.data.pair_counts.total, 1u);
    EXPECT_EQ(r.data.middlebox.total, 0u);
    EXPECT_EQ(r.data.unresolved_resets, 0u);
    EXPECT_TRUE(r.findings.empty());
}

TEST(ReportPairs, UnknownOriginWithoutThePeerStaysUnresolved) {
    rf::Reset client;
    client.origin = "unknown";
    auto r = run(rf::reset(client));
    EXPECT_EQ(r.data.middlebox.total, 0u);
    EXPECT_EQ(r.data.unresolved_resets, 1u);
    EXPECT_EQ(r.data.pair_counts.total, 0u);
}

TEST(ReportPairs, SameHostIPv4AndIPv4MappedIPv6) {
    rf::Sock a;
    a.local = {"127.0.0.1", 40000};
    a.remote = {"127.0.0.1", 8080};
    a.keepalive = {true, 30};
    rf::Sock b;
    b.process = {77, "server"};
    b.local = {"::ffff:127.0.0.1", 8080}; // a dual-stack listener's accepted socket
    b.remote = {"::ffff:127.0.0.1", 40000};
    b.keepalive = {true, 45};
    auto r = run(rf::audit(a) + rf::audit(b));
    ASSERT_EQ(r.data.pair_counts.total, 1u);
    EXPECT_EQ(r.data.pair_counts.both, 1u);
    EXPECT_TRUE(r.data.pairs.empty()); // both fine, nobody died: counted, not listed
    EXPECT_EQ(r.data.hosts.size(), 1u);
}

TEST(ReportPairs, IPv6BothNeither) {
    rf::Sock a;
    a.local = {"fd00::1", 40000};
    a.remote = {"fd00::2", 443};
    rf::Sock b;
    b.host = "h2";
    b.process = {9, "nginx"};
    b.local = {"fd00::2", 443};
    b.remote = {"fd00::1", 40000};
    rf::Reset dead;
    dead.local = {"fd00::1", 40000};
    dead.remote = {"fd00::2", 443};
    dead.at_ms = 10;
    auto r = run(rf::audit(a) + rf::audit(b) + rf::reset(dead));
    ASSERT_EQ(r.data.pair_counts.total, 1u);
    EXPECT_EQ(r.data.pair_counts.neither, 1u);
    ASSERT_EQ(r.data.pairs.size(), 1u); // listed: one end died
    EXPECT_EQ(r.data.pairs[0].status, PairStatus::neither);
}

TEST(ReportPairs, DifferentPortsDoNotPair) {
    rf::Sock a;
    rf::Sock b;
    b.host = "h2";
    b.local = {"10.0.0.2", 5432};
    b.remote = {"10.0.0.1", 40001};
    auto r = run(rf::audit(a) + rf::audit(b));
    EXPECT_EQ(r.data.pair_counts.total, 0u);
}

TEST(ReportPairs, ThreeSocketsOnOneTupleAreAmbiguous) {
    rf::Sock a;
    rf::Sock b;
    b.host = "h2";
    b.local = {"10.0.0.2", 5432};
    b.remote = {"10.0.0.1", 40000};
    rf::Sock c = b;
    c.host = "h3"; // another cluster reusing the same private addresses
    auto r = run(rf::audit(a) + rf::audit(b) + rf::audit(c));
    EXPECT_EQ(r.data.pair_counts.total, 0u);
    EXPECT_EQ(r.data.pair_counts.ambiguous, 1u);
}

// ---- malformed input ----

TEST(ReportInputProblems, EveryClassCountedWithItsFirstLine) {
    std::string in;
    in += rf::reset({});                                                  // 1 ok
    in += "not json\n";                                                   // 2
    in += "[1,2]\n";                                                      // 3
    in += R"({"v":1,"event":"lost","ts":")" + rf::ts(0) + R"("})" + "\n"; // 4 no host
    in += rf::head("lost", "h", 0) + R"(,"lost":"x"})" + "\n";            // 5
    in += R"({"v":1,"event":"lost","ts":"never","host":"h","lost":1})"
          "\n";                                // 6
    in += rf::head("mystery", "h", 0) + "}\n"; // 7
    in += R"({"v":9,"event":"tcp_reset"})"
          "\n";                                        // 8
    in += "\n";                                        // 9 blank: ignored
    in += "not json again\n";                          // 10
    in += rf::head("another_mystery", "h", 0) + "}\n"; // 11
    auto r = run(in);
    auto count = [&](LineProblem p) { return r.problems[std::size_t(p)]; };
    auto first = [&](LineProblem p) { return r.first_line[std::size_t(p)]; };
    EXPECT_EQ(count(LineProblem::not_json), 2u);
    EXPECT_EQ(first(LineProblem::not_json), 2u);
    EXPECT_EQ(count(LineProblem::not_object), 1u);
    EXPECT_EQ(first(LineProblem::not_object), 3u);
    EXPECT_EQ(count(LineProblem::missing_field), 1u);
    EXPECT_EQ(count(LineProblem::wrong_type), 1u);
    EXPECT_EQ(first(LineProblem::wrong_type), 5u);
    EXPECT_EQ(count(LineProblem::bad_value), 1u);
    EXPECT_EQ(count(LineProblem::unknown_event), 2u);
    EXPECT_EQ(first(LineProblem::unknown_event), 7u);
    EXPECT_EQ(count(LineProblem::newer_version), 1u);
    EXPECT_EQ(first(LineProblem::newer_version), 8u);
    EXPECT_EQ(r.unknown_events, (std::vector<std::string>{"mystery", "another_mystery"}));
    ASSERT_EQ(r.inputs.size(), 1u);
    EXPECT_EQ(r.inputs[0].lines, 11u);
    EXPECT_EQ(r.inputs[0].blank, 1u);
    EXPECT_EQ(r.inputs[0].accepted, 1u);
    EXPECT_EQ(r.data.resets, 1u); // the good line still counts
}

TEST(ReportInputProblems, TooLongLine) {
    std::string in = rf::reset({}) + "{\"pad\":\"" + std::string(kReportMaxLine, 'p') + "\"}\n" +
                     rf::timeout({});
    auto r = run(in, {}, 2 * kReportMaxLine);
    EXPECT_EQ(r.problems[std::size_t(LineProblem::too_long)], 1u);
    EXPECT_EQ(r.first_line[std::size_t(LineProblem::too_long)], 2u);
    EXPECT_EQ(r.data.resets, 1u);
    EXPECT_EQ(r.data.timeouts, 1u);
}

TEST(ReportInputProblems, GzipInputAndTruncatedGzip) {
    std::string in;
    for (int i = 0; i < 2000; ++i) {
        rf::Sock s;
        s.local.port = 20000 + i;
        s.at_ms = i;
        in += rf::audit(s);
    }
    auto whole = run(rf::gzip(in));
    EXPECT_TRUE(whole.inputs[0].stats.gzip);
    EXPECT_EQ(whole.inputs[0].accepted, 2000u);
    EXPECT_EQ(whole.data.connections, 2000u);
    EXPECT_EQ(whole.problems[std::size_t(LineProblem::truncated_gzip)], 0u);

    std::string gz = rf::gzip(in);
    gz.resize(gz.size() * 2 / 3);
    auto cut = run(gz);
    EXPECT_EQ(cut.problems[std::size_t(LineProblem::truncated_gzip)], 1u);
    EXPECT_GT(cut.inputs[0].accepted, 100u);
    EXPECT_LT(cut.inputs[0].accepted, 2000u);
    // The line cut in the middle is not JSON; everything before it counts.
    EXPECT_LE(cut.problems[std::size_t(LineProblem::not_json)], 1u);
}

// ---- bounded state ----

TEST(ReportMemory, DuplicateLinesDoNotGrowState) {
    rf::Reset r;
    rf::Sock s;
    s.host = "h2";
    s.process = {501, "postgres"};
    s.local = {"10.0.0.2", 5432};
    s.remote = {"10.0.0.1", 40000};
    const std::string block =
        rf::reset(r) + rf::audit(s) + rf::summary("h2", 5, {501, "postgres"}, 3, 1);

    ReportEngine engine;
    auto first = LineReader::from_memory(block, "one");
    engine.read(*first);
    const auto before = engine.state_size();
    std::string many;
    for (int i = 0; i < 20'000; ++i)
        many += block;
    auto again = LineReader::from_memory(many, "many");
    engine.read(*again);
    const auto after = engine.state_size();
    EXPECT_EQ(after.hosts, before.hosts);
    EXPECT_EQ(after.processes, before.processes);
    EXPECT_EQ(after.connections, before.connections);
    EXPECT_EQ(after.addresses, before.addresses);
    EXPECT_EQ(before.connections, 2u);

    auto res = engine.finish();
    EXPECT_EQ(res.lines, 3u * 20'001);
    EXPECT_EQ(res.data.resets, 1u); // the same reset, counted once
    EXPECT_EQ(res.data.connections, 2u);
    EXPECT_EQ(res.data.duplicates, 2u * 20'000); // the reset and the summary repeats
    const ProcessReport *pg = find_proc(res, "h2", 501);
    ASSERT_NE(pg, nullptr);
    EXPECT_EQ(pg->connections(), 3u); // the summary, once
}

TEST(ReportMemory, RepeatedSnapshotsOfOneConnectionDoNotGrowState) {
    ReportEngine engine;
    std::string in;
    for (int i = 0; i < 5000; ++i) {
        rf::Sock s;
        s.at_ms = i * 100; // audit every 100 ms: the same socket each time
        in += rf::audit(s);
    }
    auto reader = LineReader::from_memory(in, "t");
    engine.read(*reader);
    EXPECT_EQ(engine.state_size().connections, 1u);
    EXPECT_EQ(engine.state_size().processes, 1u);
    EXPECT_EQ(engine.finish().data.connections, 1u);
}
