// `rstwatch report` line parser: the fields it extracts and every class of
// rejected line.
#include <gtest/gtest.h>

#include "../report_fixtures.hpp"
#include "report/parse.hpp"

using namespace rstwatch;

namespace {

struct Parsed {
    std::optional<LineProblem> problem;
    ReportLine line;
};

// Parses one line from a padded copy, as the reader provides it.
Parsed parse(std::string text) {
    static LineParser parser;
    if (!text.empty() && text.back() == '\n') text.pop_back();
    const std::size_t len = text.size();
    text.append(kReportPadding, ' ');
    Parsed p;
    p.problem = parser.parse(text.data(), len, text.size(), p.line);
    return p;
}

std::optional<LineProblem> problem(const std::string &text) {
    return parse(text).problem;
}

std::array<std::uint8_t, 16> addr(const char *s) {
    std::array<std::uint8_t, 16> a{};
    EXPECT_TRUE(parse_report_addr(s, a)) << s;
    return a;
}

} // namespace

TEST(ReportParse, ResetFields) {
    rf::Reset r;
    r.local = {"::ffff:10.0.0.1", 40000};
    r.idle_ms = 7012;
    r.netns = 4026532001u;
    auto p = parse(rf::reset(r));
    ASSERT_FALSE(p.problem) << to_string(*p.problem);
    const ReportLine &l = p.line;
    EXPECT_EQ(l.kind, ReportEventKind::tcp_reset);
    EXPECT_EQ(l.host, "h1");
    EXPECT_EQ(l.ts_ns, 1'767'225'600'000'000'000LL);
    EXPECT_TRUE(l.has_process);
    EXPECT_EQ(l.pid, 4242u);
    EXPECT_EQ(l.comm, "client");
    EXPECT_EQ(l.uid, 1000u);
    EXPECT_EQ(l.cgroup, "/system.slice/client.service");
    EXPECT_TRUE(l.has_local);
    EXPECT_EQ(l.local.addr, addr("10.0.0.1")); // v4-mapped normalised to the same bytes
    EXPECT_EQ(l.local.port, 40000);
    EXPECT_EQ(l.remote.addr, addr("10.0.0.2"));
    EXPECT_EQ(l.remote.port, 5432);
    EXPECT_EQ(l.netns, 4026532001u);
    EXPECT_EQ(l.ka, KaState::off);
    EXPECT_EQ(l.ka_idle_s, 7200u);
    EXPECT_TRUE(l.has_idle);
    EXPECT_EQ(l.idle_ms, 7012u);
    EXPECT_EQ(l.verdict, Verdict::keepalive_disabled);
    EXPECT_EQ(l.origin, Origin::middlebox);
    EXPECT_FALSE(l.sent);
}

TEST(ReportParse, NullsAreAbsentValuesNotErrors) {
    rf::Reset r;
    r.process = {};
    r.keepalive.reset();
    r.idle_ms = -1;
    r.sent = true;
    r.verdict = "no_socket";
    r.origin = "local";
    auto p = parse(rf::reset(r));
    ASSERT_FALSE(p.problem);
    EXPECT_FALSE(p.line.has_process);
    EXPECT_EQ(p.line.ka, KaState::unknown);
    EXPECT_FALSE(p.line.has_idle);
    EXPECT_TRUE(p.line.sent);
    EXPECT_EQ(p.line.verdict, Verdict::no_socket);
}

TEST(ReportParse, TimeoutSummaryAndKeepaliveSet) {
    auto t = parse(rf::timeout({}));
    ASSERT_FALSE(t.problem);
    EXPECT_EQ(t.line.kind, ReportEventKind::tcp_timeout);
    auto s = parse(rf::summary("h2", 5, {77, "nginx"}, 12, 4));
    ASSERT_FALSE(s.problem);
    EXPECT_EQ(s.line.kind, ReportEventKind::process_summary);
    EXPECT_EQ(s.line.connections, 12u);
    EXPECT_EQ(s.line.without_keepalive, 4u);
    auto k = parse(rf::head("keepalive_set", "h1", 0) +
                   R"(,"process":{"pid":9,"comm":"app","uid":0},"fd":3,"option":"TCP_KEEPIDLE",)"
                   R"("level":"IPPROTO_TCP","value":30,"result":0,"misdirected":false,)"
                   R"("family":null,"local":null,"remote":null,"netns":null})");
    ASSERT_FALSE(k.problem);
    EXPECT_EQ(k.line.option, KaOption::tcp_keepidle);
    EXPECT_EQ(k.line.value, 30);
    EXPECT_FALSE(k.line.has_local);
}

TEST(ReportParse, NotJson) {
    EXPECT_EQ(problem("this is not json"), LineProblem::not_json);
    EXPECT_EQ(problem(R"({"v":1,"event":"tcp_reset")"), LineProblem::not_json); // truncated
    EXPECT_EQ(problem(R"({"v":1,"event":"lost)"), LineProblem::not_json);       // open string
    EXPECT_EQ(problem(R"({"v":1} trailing)"), LineProblem::not_json);
    EXPECT_EQ(problem(R"({"v":1}})"), LineProblem::not_json);
    EXPECT_EQ(problem("[1,2"), LineProblem::not_json);
}

TEST(ReportParse, JsonButNotAnObject) {
    EXPECT_EQ(problem("[1,2,3]"), LineProblem::not_object);
    EXPECT_EQ(problem("42"), LineProblem::not_object);
    EXPECT_EQ(problem(R"("a string")"), LineProblem::not_object);
    EXPECT_EQ(problem("null"), LineProblem::not_object);
    EXPECT_EQ(problem("true"), LineProblem::not_object);
}

TEST(ReportParse, MissingFields) {
    EXPECT_EQ(problem(R"({"v":1,"event":"lost","ts":")" + rf::ts(0) + R"(","lost":1})"),
              LineProblem::missing_field); // no host
    EXPECT_EQ(problem(R"({"event":"lost","ts":")" + rf::ts(0) + R"(","host":"h","lost":1})"),
              LineProblem::missing_field); // no v
    std::string no_verdict = rf::reset({});
    auto pos = no_verdict.find(",\"verdict\"");
    no_verdict.erase(pos, no_verdict.find(",\"explanation\"") - pos);
    EXPECT_EQ(problem(no_verdict), LineProblem::missing_field);
    std::string no_pid = rf::reset({});
    no_pid.replace(no_pid.find("\"pid\":4242,"), 11, "");
    EXPECT_EQ(problem(no_pid), LineProblem::missing_field);
    std::string no_port = rf::reset({});
    no_port.replace(no_port.find(",\"port\":40000"), 13, "");
    EXPECT_EQ(problem(no_port), LineProblem::missing_field);
}

TEST(ReportParse, WrongTypes) {
    auto base = rf::head("lost", "h", 0);
    EXPECT_EQ(
        problem(R"({"v":"1","event":"lost","ts":")" + rf::ts(0) + R"(","host":"h","lost":1})"),
        LineProblem::wrong_type);
    EXPECT_EQ(problem(base + R"(,"lost":"many"})"), LineProblem::wrong_type);
    EXPECT_EQ(problem(base + R"(,"lost":-3})"), LineProblem::wrong_type);
    EXPECT_EQ(problem(base + R"(,"lost":1.5})"), LineProblem::wrong_type);
    EXPECT_EQ(problem(R"({"v":1,"event":"lost","ts":")" + rf::ts(0) + R"(","host":7,"lost":1})"),
              LineProblem::wrong_type);
    std::string r = rf::reset({});
    r.replace(r.find("\"idle_ms\":7000"), 14, "\"idle_ms\":\"7000\"");
    EXPECT_EQ(problem(r), LineProblem::wrong_type);
    std::string k = rf::reset({});
    k.replace(k.find("\"enabled\":false"), 15, "\"enabled\":0");
    EXPECT_EQ(problem(k), LineProblem::wrong_type);
    std::string pr = rf::reset({});
    pr.replace(pr.find("\"process\":{"), 11, "\"process\":[");
    EXPECT_EQ(problem(pr), LineProblem::wrong_type);
    // process_summary must name its process.
    std::string s = rf::summary("h", 0, {5, "a"}, 1, 1);
    s.replace(s.find("\"process\":{"),
              std::string("\"process\":{\"pid\":5,\"comm\":\"a\",\"uid\":0}").size(),
              "\"process\":null");
    EXPECT_EQ(problem(s), LineProblem::wrong_type);
}

TEST(ReportParse, BadValues) {
    EXPECT_EQ(problem(R"({"v":1,"event":"lost","ts":"yesterday","host":"h","lost":1})"),
              LineProblem::bad_value);
    EXPECT_EQ(problem(R"({"v":0,"event":"lost","ts":")" + rf::ts(0) + R"(","host":"h","lost":1})"),
              LineProblem::bad_value);
    rf::Reset bad_addr;
    bad_addr.local = {"10.0.0.300", 1};
    EXPECT_EQ(problem(rf::reset(bad_addr)), LineProblem::bad_value);
    rf::Reset bad_port;
    bad_port.local = {"10.0.0.1", 70000};
    EXPECT_EQ(problem(rf::reset(bad_port)), LineProblem::bad_value);
    rf::Reset bad_verdict;
    bad_verdict.verdict = "maybe";
    EXPECT_EQ(problem(rf::reset(bad_verdict)), LineProblem::bad_value);
    rf::Reset bad_origin;
    bad_origin.origin = "space";
    EXPECT_EQ(problem(rf::reset(bad_origin)), LineProblem::bad_value);
}

TEST(ReportParse, UnknownEventKeepsItsName) {
    auto p = parse(rf::head("tcp_teleport", "h", 0) + "}");
    EXPECT_EQ(p.problem, LineProblem::unknown_event);
    EXPECT_EQ(p.line.event, "tcp_teleport");
    // report_* lines fed back in are known and ignored.
    EXPECT_FALSE(problem(rf::head("report_summary", "h", 0) + R"(,"lines":3})"));
}

TEST(ReportParse, NewerVersionWinsOverEverythingElse) {
    EXPECT_EQ(problem(R"({"v":2,"event":"tcp_reset"})"), LineProblem::newer_version);
    EXPECT_EQ(problem(R"({"v":2,"event":"new_kind","ts":"?","host":"h"})"),
              LineProblem::newer_version);
    // "v" after an unknown event: the version decides.
    EXPECT_EQ(problem(R"({"event":"new_kind","v":3,"ts":")" + rf::ts(0) + R"(","host":"h"})"),
              LineProblem::newer_version);
    EXPECT_EQ(problem(R"({"event":"new_kind","v":1,"ts":")" + rf::ts(0) + R"(","host":"h"})"),
              LineProblem::unknown_event);
}

TEST(ReportParse, FieldOrderAndUnknownFieldsDoNotMatter) {
    auto p = parse(R"({"extra":{"a":[1,{"b":null}]},"lost":5,"host":"h","ts":")" + rf::ts(0) +
                   R"(","event":"lost","v":1,"reason":"ringbuf_full"})");
    ASSERT_FALSE(p.problem);
    EXPECT_EQ(p.line.lost, 5u);
}

TEST(ReportParse, Rfc3339) {
    EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:01.5Z"), 1'500'000'000);
    EXPECT_EQ(parse_rfc3339_ns("2026-01-01T00:00:00.000000001Z"), 1'767'225'600'000'000'001LL);
    EXPECT_EQ(parse_rfc3339_ns("2026-01-01T01:00:00+01:00"), 1'767'225'600'000'000'000LL);
    EXPECT_EQ(parse_rfc3339_ns("2025-12-31T23:00:00-01:00"), 1'767'225'600'000'000'000LL);
    EXPECT_FALSE(parse_rfc3339_ns("2026-13-01T00:00:00Z"));
    EXPECT_FALSE(parse_rfc3339_ns("2026-01-01T00:00:00"));
    EXPECT_FALSE(parse_rfc3339_ns("2026-01-01T00:00:00.Z"));
    EXPECT_FALSE(parse_rfc3339_ns("2026-01-01 00:00:00Z"));
    // Beyond what int64 nanoseconds hold (found by the report fuzzer: UB).
    EXPECT_EQ(parse_rfc3339_ns("2262-01-01T00:00:00Z"), 9'214'646'400'000'000'000LL);
    EXPECT_FALSE(parse_rfc3339_ns("4440-01-01T00:00:00Z"));
    EXPECT_FALSE(parse_rfc3339_ns("9999-12-31T23:59:59.999999999Z"));
}

TEST(ReportParse, Addresses) {
    EXPECT_EQ(addr("10.1.2.3"), addr("::ffff:10.1.2.3"));
    auto v6 = addr("fd00::1");
    EXPECT_EQ(v6[0], 0xfd);
    EXPECT_EQ(v6[15], 1);
    std::array<std::uint8_t, 16> a{};
    EXPECT_FALSE(parse_report_addr("", a));
    EXPECT_FALSE(parse_report_addr("1.2.3", a));
    EXPECT_FALSE(parse_report_addr("1.2.3.4.5", a));
    EXPECT_FALSE(parse_report_addr("host.example", a));
    EXPECT_FALSE(parse_report_addr("fd00::zz", a));
}
