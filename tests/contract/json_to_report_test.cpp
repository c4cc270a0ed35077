// The JSON contract from both ends: what output/format_json.cpp writes is
// what report/parse.cpp reads. Each event type the trace formatter emits is
// formatted from a synthetic record and parsed back; the fields the report
// uses must come out as they went in. This binary links only rw_output and
// rw_report (no libbpf: the layers.no_libbpf_in_output_report test checks it).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "../unit/fixtures.hpp"
#include "output/format.hpp"
#include "report/input.hpp"
#include "report/parse.hpp"
#include "report/report.hpp"

using namespace rstwatch;

namespace {

constexpr std::int64_t kTs = 1795550761123456789LL; // 2026-11-24T20:06:01.123456789Z

// Parses one formatted line (without its newline) with the padding simdjson needs.
ReportLine parse_line(LineParser &p, const std::string &formatted) {
    EXPECT_FALSE(formatted.empty());
    EXPECT_EQ(formatted.find('\n'), formatted.size() - 1) << formatted;
    std::string buf = formatted.substr(0, formatted.size() - 1);
    const std::size_t len = buf.size();
    buf.resize(len + kReportPadding, ' ');
    ReportLine line;
    auto problem = p.parse(buf.data(), len, buf.size(), line);
    EXPECT_FALSE(problem) << to_string(*problem) << ": " << formatted;
    return line;
}

std::array<std::uint8_t, 16> addr(const char *text) {
    std::array<std::uint8_t, 16> a{};
    EXPECT_TRUE(parse_report_addr(text, a));
    return a;
}

class JsonToReport : public ::testing::Test {
  protected:
    std::unique_ptr<Formatter> fmt = make_json_formatter("host-a");
    LineParser parser;
    std::string out;
    CgroupInfo cg{"/system.slice/app.service", {}};
};

} // namespace

TEST_F(JsonToReport, ResetReceived) {
    rw_reset r = fixtures::reset(RW_DIR_RECEIVED);
    r.owner.cgroup_id = 77;
    Diagnosis dx{Verdict::keepalive_disabled, "why"};
    fmt->reset(out, ResetEvent{r, kTs, "", dx, Origin::middlebox, &cg});
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::tcp_reset);
    EXPECT_EQ(l.host, "host-a");
    EXPECT_EQ(l.ts_ns, kTs);
    EXPECT_TRUE(l.has_process);
    EXPECT_EQ(l.pid, 4242u);
    EXPECT_EQ(l.uid, 1000u);
    EXPECT_EQ(l.comm, "client");
    EXPECT_EQ(l.cgroup, "/system.slice/app.service");
    ASSERT_TRUE(l.has_local && l.has_remote);
    EXPECT_EQ(l.local.addr, addr("10.0.1.2"));
    EXPECT_EQ(l.local.port, 40000);
    EXPECT_EQ(l.remote.addr, addr("10.0.2.2"));
    EXPECT_EQ(l.remote.port, 5000);
    EXPECT_EQ(l.netns, 4026531840u);
    EXPECT_EQ(l.ka, KaState::off);
    EXPECT_EQ(l.ka_idle_s, 7200u);
    EXPECT_FALSE(l.ka_idle_from_socket);
    EXPECT_TRUE(l.has_idle);
    EXPECT_EQ(l.idle_ms, 7000u);
    EXPECT_EQ(l.verdict, Verdict::keepalive_disabled);
    EXPECT_EQ(l.origin, Origin::middlebox);
    EXPECT_FALSE(l.sent);
}

TEST_F(JsonToReport, ResetSentWithKeepaliveOnFromTheSocket) {
    rw_reset r = fixtures::reset(RW_DIR_SENT);
    r.ka.enabled = 1;
    r.ka.idle_s = 60;
    r.ka.from_socket = RW_KA_IDLE_SOCKET;
    Diagnosis dx{Verdict::local_abort, "the application closed with unread data"};
    fmt->reset(out, ResetEvent{r, kTs, "", dx, Origin::local, nullptr});
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::tcp_reset);
    EXPECT_TRUE(l.sent);
    EXPECT_EQ(l.ka, KaState::on);
    EXPECT_EQ(l.ka_idle_s, 60u);
    EXPECT_TRUE(l.ka_idle_from_socket);
    EXPECT_EQ(l.verdict, Verdict::local_abort);
    EXPECT_EQ(l.origin, Origin::local);
    EXPECT_TRUE(l.cgroup.empty());
}

TEST_F(JsonToReport, Timeout) {
    rw_close c = fixtures::close_rec(RW_CAUSE_RETRANSMIT);
    Diagnosis dx{Verdict::keepalive_too_slow, "why"};
    fmt->timeout(out, TimeoutEvent{c, kTs, dx, &cg});
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::tcp_timeout);
    EXPECT_EQ(l.pid, 4242u);
    EXPECT_EQ(l.local.port, 40000);
    EXPECT_EQ(l.remote.port, 5000);
    EXPECT_TRUE(l.has_idle);
    EXPECT_EQ(l.idle_ms, 5000u);
    EXPECT_EQ(l.verdict, Verdict::keepalive_too_slow);
}

TEST_F(JsonToReport, ConnectionClosed) {
    rw_close c = fixtures::close_rec();
    fmt->connection_closed(out, ClosedEvent{c, kTs, nullptr});
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::connection_closed);
    EXPECT_EQ(l.pid, 4242u);
    EXPECT_EQ(l.comm, "client");
    EXPECT_EQ(l.local.addr, addr("10.0.1.2"));
    EXPECT_EQ(l.remote.addr, addr("10.0.2.2"));
    EXPECT_EQ(l.ka, KaState::off);
}

TEST_F(JsonToReport, KeepaliveSet) {
    rw_sockopt s{};
    s.hdr.type = RW_REC_SOCKOPT;
    s.owner = fixtures::owner(7, "app", RW_OWNER_CURRENT);
    s.fd = 5;
    s.level = IPPROTO_TCP;
    s.optname = 4; // TCP_KEEPIDLE
    s.value = 30;
    s.result = 0;
    fmt->keepalive_set(out, KeepaliveSetEvent{s, kTs, nullptr});
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::keepalive_set);
    EXPECT_EQ(l.pid, 7u);
    EXPECT_EQ(l.comm, "app");
    EXPECT_EQ(l.option, KaOption::tcp_keepidle);
    EXPECT_EQ(l.value, 30);
    EXPECT_EQ(l.result, 0);
}

TEST_F(JsonToReport, ProcessSummaryAndAuditProcess) {
    ProcessSummary ps;
    ps.pid = 9;
    ps.comm = "db";
    ps.uid = 1000;
    ps.connections = 12;
    ps.without_keepalive = 5;
    ps.resets_received = 3;
    ps.resets_sent = 2;
    ps.timeouts = 1;
    fmt->process_summary(out, kTs, ps);
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::process_summary);
    EXPECT_EQ(l.pid, 9u);
    EXPECT_EQ(l.comm, "db");
    EXPECT_EQ(l.connections, 12u);
    EXPECT_EQ(l.without_keepalive, 5u);
    EXPECT_EQ(l.resets_received, 3u);
    EXPECT_EQ(l.resets_sent, 2u);
    EXPECT_EQ(l.timeouts, 1u);

    AuditProcess ap;
    ap.ts_ns = kTs;
    ap.pid = 9;
    ap.comm = "db";
    ap.sockets = 4;
    ap.without_keepalive = 2;
    ap.max_idle_ms = 1000;
    out.clear();
    fmt->audit_process(out, ap);
    l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::audit_process);
    EXPECT_EQ(l.sockets, 4u);
    EXPECT_EQ(l.without_keepalive, 2u);
}

TEST_F(JsonToReport, AuditSocket) {
    rw_snapshot s = fixtures::snapshot(31, "cache", 0xabc, 7);
    fmt->audit_socket(out, AuditSocket{s, kTs, nullptr, false, Risk::exposed});
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::audit_socket);
    EXPECT_EQ(l.pid, 31u);
    EXPECT_EQ(l.comm, "cache");
    EXPECT_EQ(l.local.port, 30007);
    EXPECT_EQ(l.remote.port, 8080);
    EXPECT_TRUE(l.has_idle);
    EXPECT_EQ(l.idle_ms, 1000u);
}

TEST_F(JsonToReport, SessionRecordsAndLost) {
    fmt->session_start(
        out, SessionStart{
                 kTs, "0.1.0", "6.18.0", 1, {"tcp_reset"}, "cgroup", true, 250, 4u << 20, 3, 40});
    EXPECT_EQ(parse_line(parser, out).kind, ReportEventKind::session_start);
    out.clear();
    fmt->lost(out, LostEvent{kTs, "ringbuf_full", 5, 12, {5, 0, 0, 0}});
    ReportLine l = parse_line(parser, out);
    EXPECT_EQ(l.kind, ReportEventKind::lost);
    EXPECT_EQ(l.lost, 5u);
    out.clear();
    fmt->session_summary(out, SessionSummary{kTs, 1000, "signal", 3, 0, 0, 0, 0, 0, 0, 2, 1});
    EXPECT_EQ(parse_line(parser, out).kind, ReportEventKind::session_summary);
}

// The whole report over a trace's output: every line accepted, none malformed,
// and the reset counted against its process.
TEST_F(JsonToReport, ReportEngineAcceptsATraceSession) {
    rw_reset r = fixtures::reset(RW_DIR_RECEIVED);
    Diagnosis dx{Verdict::keepalive_disabled, "why"};
    rw_close c = fixtures::close_rec();
    fmt->session_start(
        out, SessionStart{
                 kTs, "0.1.0", "6.18.0", 1, {"tcp_reset"}, "cgroup", true, 250, 4u << 20, 0, 40});
    fmt->reset(out, ResetEvent{r, kTs + 1, "", dx, Origin::middlebox, &cg});
    fmt->connection_closed(out, ClosedEvent{c, kTs + 2, &cg});
    fmt->session_summary(out, SessionSummary{kTs + 3, 3, "signal", 2, 0, 0, 0, 0, 0, 0, 1, 0});
    ReportEngine engine;
    auto reader = LineReader::from_memory(out, "trace.ndjson");
    engine.read(*reader);
    ReportResult res = engine.finish();
    EXPECT_EQ(res.lines, 4u);
    for (std::size_t i = 0; i < kLineProblemCount; ++i)
        EXPECT_EQ(res.problems[i], 0u) << to_string(LineProblem(i));
    ASSERT_EQ(res.inputs.size(), 1u);
    EXPECT_EQ(res.inputs[0].accepted, 4u);
    EXPECT_EQ(res.data.resets, 1u);
    ASSERT_EQ(res.data.hosts.size(), 1u);
}
