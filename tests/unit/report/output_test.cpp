// `rstwatch report` output: every JSON line carries the common fields and the
// report_* shapes; the text report leads with the finding and its fix; the
// CLI wires the subcommand and exits 2 for an unreadable input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../report_fixtures.hpp"
#include "cli/cli.hpp"
#include "cmd/commands.hpp"
#include "util/error.hpp"
#include "report/format.hpp"

using namespace rstwatch;
using nlohmann::json;

namespace {

// The lab's scenario, as the two ends see it: the client on host "lab-client"
// (keepalive off) gets an RST after 7 s idle; the server on "lab-server"
// (keepalive on) logged the connection and sent nothing.
std::string lab_input() {
    rf::Reset client;
    client.host = "lab-client";
    client.origin = "unknown";
    client.idle_ms = 7012;
    client.local = {"10.10.1.2", 40000};
    client.remote = {"10.10.2.2", 5000};
    rf::Sock server;
    server.host = "lab-server";
    server.process = {5000, "server"};
    server.local = {"10.10.2.2", 5000};
    server.remote = {"10.10.1.2", 40000};
    server.keepalive = {true, 2};
    return rf::reset(client) + rf::audit(server) + "garbage\n";
}

std::vector<json> json_lines(const ReportResult &r) {
    std::string out;
    format_report_json(r, "reporter", 1'767'225'600'000'000'000LL, out);
    std::vector<json> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
        lines.push_back(json::parse(line));
    return lines;
}

std::vector<json> of(const std::vector<json> &lines, const std::string &event) {
    std::vector<json> out;
    for (const auto &l : lines)
        if (l["event"] == event) out.push_back(l);
    return out;
}

} // namespace

TEST(ReportJson, EveryLineHasTheCommonFields) {
    auto lines = json_lines(rf::run(lab_input()));
    ASSERT_FALSE(lines.empty());
    for (const auto &l : lines) {
        EXPECT_EQ(l["v"], 1);
        EXPECT_EQ(l["host"], "reporter");
        EXPECT_EQ(l["ts"], "2026-01-01T00:00:00.000000000Z");
        EXPECT_EQ(l["event"].get<std::string>().rfind("report_", 0), 0u) << l.dump();
    }
    EXPECT_EQ(of(lines, "report_input").size(), 1u);
    EXPECT_EQ(of(lines, "report_summary").size(), 1u);
    EXPECT_EQ(of(lines, "report_histogram").size(), 1u);
    EXPECT_EQ(of(lines, "report_process").size(), 2u);
    EXPECT_EQ(of(lines, "report_host").size(), 2u);
    EXPECT_EQ(of(lines, "report_pair").size(), 1u);
    EXPECT_EQ(of(lines, "report_finding").size(), 2u);
}

TEST(ReportJson, LabScenarioNamesTheClientPairsBothEndsAndBoundsTheTimeout) {
    auto lines = json_lines(rf::run(lab_input()));
    auto procs = of(lines, "report_process");
    EXPECT_EQ(procs[0]["rank"], 1);
    EXPECT_EQ(procs[0]["source_host"], "lab-client");
    EXPECT_EQ(procs[0]["process"]["comm"], "client");
    EXPECT_EQ(procs[0]["process"]["pid"], 4242);
    EXPECT_EQ(procs[0]["without_keepalive"], 1);
    EXPECT_EQ(procs[0]["resets"]["by_verdict"]["keepalive_disabled"], 1);
    EXPECT_EQ(procs[0]["middlebox_deaths"], 1);
    EXPECT_EQ(procs[0]["min_middlebox_idle_ms"], 7012);

    auto pair = of(lines, "report_pair")[0];
    EXPECT_EQ(pair["status"], "one_side");
    EXPECT_EQ(pair["same_host"], false);
    EXPECT_EQ(pair["sides"][0]["source_host"], "lab-client");
    EXPECT_EQ(pair["sides"][0]["keepalive"]["enabled"], false);
    EXPECT_EQ(pair["sides"][0]["death"], "reset_received");
    EXPECT_EQ(pair["sides"][1]["source_host"], "lab-server");
    EXPECT_EQ(pair["sides"][1]["keepalive"]["enabled"], true);
    EXPECT_EQ(pair["sides"][1]["keepalive"]["idle_s"], 2);
    EXPECT_EQ(pair["sides"][1]["keepalive"]["below_bound"], true);

    auto f = of(lines, "report_finding")[0];
    EXPECT_EQ(f["kind"], "middlebox_idle_timeout");
    EXPECT_EQ(f["upper_bound_ms"], 7012);
    EXPECT_EQ(f["inferred_origin"], 1);
    EXPECT_EQ(f["keepalive"]["idle_s"], 3);
    EXPECT_EQ(f["consistent_presets"].size(), 0u);
    EXPECT_EQ(f["configured_timeout_ms"], nullptr);
    EXPECT_EQ(f["affected"][0]["process"]["comm"], "client");
    EXPECT_EQ(f["affected"][0]["keepalive"], "disabled");
    EXPECT_EQ(f["commands"][0]["command"],
              "sysctl -w net.ipv4.tcp_keepalive_time=3 net.ipv4.tcp_keepalive_intvl=1 "
              "net.ipv4.tcp_keepalive_probes=5");
    EXPECT_EQ(of(lines, "report_finding")[1]["kind"], "one_side_keepalive");

    auto hist = of(lines, "report_histogram")[0];
    ASSERT_EQ(hist["buckets"].size(), 1u);
    EXPECT_EQ(hist["buckets"][0]["ge_ms"], 4096);
    EXPECT_EQ(hist["buckets"][0]["lt_ms"], 8192);
    EXPECT_EQ(hist["buckets"][0]["middlebox"], 1);

    auto sum = of(lines, "report_summary")[0];
    EXPECT_EQ(sum["lines"], 3);
    EXPECT_EQ(sum["malformed"], 1);
    EXPECT_EQ(sum["problems"][0]["class"], "not_json");
    EXPECT_EQ(sum["problems"][0]["first_line"], 3);
    EXPECT_EQ(sum["pairs"]["one_side"], 1);
}

TEST(ReportJson, ConfiguredTimeoutIsReported) {
    auto lines = json_lines(rf::run(lab_input(), std::chrono::seconds(4)));
    auto f = of(lines, "report_finding")[0];
    EXPECT_EQ(f["configured_timeout_ms"], 4000);
    EXPECT_EQ(f["consistent_with_configured"], true);
    EXPECT_EQ(f["keepalive"]["idle_s"], 2);
}

TEST(ReportJson, EmptyInputStillReports) {
    auto lines = json_lines(rf::run(""));
    EXPECT_EQ(of(lines, "report_summary").size(), 1u);
    auto hist = of(lines, "report_histogram");
    ASSERT_EQ(hist.size(), 1u);
    EXPECT_TRUE(hist[0]["buckets"].empty());
    EXPECT_TRUE(of(lines, "report_finding").empty());
}

TEST(ReportText, LeadsWithTheFindingAndItsFix) {
    std::string out;
    format_report_text(rf::run(lab_input()), out);
    const auto findings = out.find("FINDINGS");
    const auto processes = out.find("PROCESSES");
    ASSERT_NE(findings, std::string::npos);
    ASSERT_NE(processes, std::string::npos);
    EXPECT_LT(findings, processes);
    EXPECT_NE(out.find("The middlebox idle timeout is at most 7.0s"), std::string::npos) << out;
    EXPECT_NE(out.find("sysctl -w net.ipv4.tcp_keepalive_time=3"), std::string::npos);
    EXPECT_NE(out.find("/etc/sysctl.d/90-tcp-keepalive.conf"), std::string::npos);
    EXPECT_NE(out.find("rstwatch enforce --cgroup /system.slice/client.service --idle 3s"),
              std::string::npos);
    EXPECT_NE(out.find("lab-client client (pid 4242)"), std::string::npos);
    EXPECT_NE(out.find("one_side"), std::string::npos);
    EXPECT_NE(out.find("skipped not_json: 1 (first: test.ndjson:3)"), std::string::npos);
}

TEST(ReportText, UntrustedEventTypeNamesCannotReachTheTerminal) {
    // Any host can write any event type; the text report lists unknown ones
    // (found by the report fuzzer: a DEL went through).
    std::string out;
    format_report_text(rf::run(R"({"v":1,"event":"enforce\u007fremoved\u001b[2J","ts":")" +
                               rf::ts(0) + R"(","host":"h"})" + "\n"),
                       out);
    EXPECT_NE(out.find("unknown event types: enforce\\x7fremoved\\x1b[2J"), std::string::npos)
        << out;
    for (char ch : out) {
        const auto c = static_cast<unsigned char>(ch);
        EXPECT_TRUE(c == '\n' || (c >= 0x20 && c != 0x7f)) << int(c);
    }
}

TEST(ReportText, UntrustedHostCommAndCgroupCannotReachTheTerminal) {
    // Host names, comms and cgroups are whatever the files say (found by the
    // report fuzzer: a DEL in a host name reached the HOSTS table).
    rf::Reset r;
    r.host = "web\\u007f1\\u001b[2J";
    r.process = {4242, "cli\\u0007ent"};
    std::string out;
    format_report_text(rf::run(rf::reset(r) + rf::reset(r)), out);
    EXPECT_NE(out.find("web\\x7f1\\x1b[2J"), std::string::npos) << out;
    EXPECT_NE(out.find("cli\\x07ent"), std::string::npos) << out;
    for (char ch : out) {
        const auto c = static_cast<unsigned char>(ch);
        EXPECT_TRUE(c == '\n' || (c >= 0x20 && c != 0x7f)) << int(c);
    }
}

TEST(ReportCli, ParsesFilesFormatAndPreset) {
    std::ostringstream help;
    auto r = parse_cli({"report", "--format", "text", "--middlebox-timeout", "aws-nat-gateway",
                        "a.ndjson", "-", "b.ndjson.gz"},
                       help);
    ASSERT_TRUE(r.command);
    auto *o = std::get_if<ReportOptions>(&*r.command);
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(o->out.format, Format::text);
    EXPECT_EQ(o->inputs, (std::vector<std::string>{"a.ndjson", "-", "b.ndjson.gz"}));
    ASSERT_TRUE(o->middlebox_timeout);
    EXPECT_EQ(o->middlebox_timeout->count(), 350'000);
    auto none = parse_cli({"report"}, help);
    EXPECT_TRUE(std::get<ReportOptions>(*none.command).inputs.empty());
    EXPECT_THROW(parse_cli({"report", "--format", "yaml"}, help), UsageError);
    EXPECT_THROW(parse_cli({"report", "--middlebox-timeout", "forever"}, help), UsageError);
}

TEST(ReportCli, MissingFileIsExitTwoBeforeAnythingIsRead) {
    ReportOptions o;
    o.inputs = {"-", "/nonexistent/rstwatch-report.ndjson"};
    try {
        run_report(o);
        FAIL() << "no exception";
    } catch (const Error &e) {
        EXPECT_EQ(int(e.code()), 2);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/rstwatch-report.ndjson"),
                  std::string::npos);
    }
}

namespace {

// A fleet's usual shape: twelve replicas of one worker (same host, comm and
// cgroup), each with two middlebox resets, beside one other process, and the
// same worker on a second host.
std::string replicas_input() {
    std::string in;
    int port = 20000;
    auto add = [&](const char *host, std::uint32_t pid, const char *comm, int deaths) {
        for (int i = 0; i < deaths; ++i) {
            rf::Reset r;
            r.host = host;
            r.process = {pid, comm};
            r.local.port = port++;
            r.idle_ms = 7000 + i;
            in += rf::reset(r);
        }
    };
    for (std::uint32_t pid = 100; pid < 112; ++pid)
        add("h1", pid, "worker", 2);
    add("h1", 99, "cron", 1);
    add("h2", 100, "worker", 1);
    return in;
}

std::size_t count(const std::string &hay, const std::string &needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1))
        ++n;
    return n;
}

} // namespace

TEST(ReportText, ReplicasOfOneWorkerAreOneRowWithOneFix) {
    std::string out;
    format_report_text(rf::run(replicas_input()), out);
    // One fix for the twelve, not twelve identical ones (issue 17).
    EXPECT_EQ(count(out, "rstwatch enforce --cgroup /system.slice/worker.service --idle"), 2u)
        << out; // h1's group and h2's
    EXPECT_NE(out.find("h1 worker (12 pids: "), std::string::npos) << out;
    EXPECT_NE(out.find(": 24 deaths, keepalive disabled"), std::string::npos) << out;
    EXPECT_EQ(count(out, "pid 101"), 0u) << out; // per-pid detail is JSON's
    const auto table = out.find("PROCESSES (one row per host, comm and cgroup");
    ASSERT_NE(table, std::string::npos);
    const auto row = out.find("h1   worker", table);
    ASSERT_NE(row, std::string::npos) << out;
    const std::string r = out.substr(row, out.find('\n', row) - row);
    EXPECT_NE(r.find("     12 "), std::string::npos) << r;
    EXPECT_NE(r.find("/system.slice/worker.service"), std::string::npos) << r;
    EXPECT_NE(r.find("keepalive_disabled:24"), std::string::npos) << r;
}

TEST(ReportJson, GroupsAreAddedBesideThePerPidDetail) {
    auto lines = json_lines(rf::run(replicas_input()));
    auto f = of(lines, "report_finding");
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0]["affected"].size(), 14u); // per pid, as before
    const auto &g = f[0]["affected_groups"];
    ASSERT_EQ(g.size(), 3u);
    EXPECT_EQ(g[0]["source_host"], "h1");
    EXPECT_EQ(g[0]["comm"], "worker");
    EXPECT_EQ(g[0]["cgroup"], "/system.slice/worker.service");
    EXPECT_EQ(g[0]["processes"], 12);
    EXPECT_EQ(g[0]["pids"].size(), 10u);
    EXPECT_EQ(g[0]["deaths"], 24);
    EXPECT_EQ(g[0]["keepalive"], "disabled");
    EXPECT_EQ(g[0]["fix"]["command"], "rstwatch enforce --cgroup /system.slice/worker.service "
                                      "--idle 3s");
    EXPECT_EQ(f[0]["affected_groups_omitted"], 0);
    EXPECT_EQ(of(lines, "report_process").size(), 14u);
}
