// Privileged: `rstwatch probe` against the lab firewall (scripts/lab.sh:
// client -- nftables + conntrack -- server, in network namespaces) with a
// conntrack timeout of 4 s. The probe must bracket that timeout, tell a
// firewall that resets from one that drops, and tell the server's own idle
// close from a middlebox. Also unprivileged runs on loopback (IPv6, text,
// exit codes). Each test is bounded well under 60 s.
#include <fstream>
#include <unistd.h>

#include "harness.hpp"
#include "lab_support.hpp"

using namespace rwtest;

namespace {

constexpr int kCtTimeoutMs = 4000;

std::string idle_server_bin() {
    return std::string(RW_HELPER_DIR) + "/rw_idle_server";
}

struct ProbeRun {
    int rc = -1;
    std::vector<json> lines;
    std::string err;
    std::vector<json> of(const std::string &type) const { return of_type(lines, type); }
    const json &summary() const {
        static const json none;
        for (auto &l : lines)
            if (l.value("event", "") == "probe_summary") return l;
        ADD_FAILURE() << "no probe_summary";
        return none;
    }
};

ProbeRun run_probe(const std::vector<std::string> &argv, std::chrono::milliseconds timeout = 50s) {
    Child c(argv);
    ProbeRun r;
    for (auto &l : c.read_all(timeout)) {
        json j = json::parse(l, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
        if (!j.is_discarded()) r.lines.push_back(std::move(j));
    }
    r.rc = c.wait(5s);
    r.err = c.stderr_text();
    return r;
}

// Real probe output against schema/probe_*.schema.json.
void expect_schema_valid(const std::vector<json> &lines) {
    std::string path = "/tmp/rwtest-probe-" + std::to_string(getpid()) + ".ndjson";
    {
        std::ofstream out(path);
        for (auto &l : lines)
            out << l.dump() << "\n";
    }
    std::string out = sh("/usr/bin/python3 " + std::string(RW_SOURCE_DIR) +
                         "/scripts/validate-events.py --require probe_start,probe_result,"
                         "probe_summary " +
                         path + " 2>&1; true");
    EXPECT_NE(out.find("valid: " + std::to_string(lines.size()) + " line(s)"), std::string::npos)
        << out;
    unlink(path.c_str());
}

// A probe from the client namespace to an idle server in the server namespace.
struct LabProbe {
    LabNet lab;
    std::unique_ptr<Child> server;
    std::string target;
    LabProbe(const std::string &mode, std::vector<std::string> server_opts = {})
        : lab("rwpr", mode, kCtTimeoutMs / 1000) {
        if (!lab.up()) return;
        std::vector<std::string> argv{idle_server_bin(), "--addr", lab["SERVER_ADDR"],
                                      "--duration-ms", "55000"};
        argv.insert(argv.end(), server_opts.begin(), server_opts.end());
        server = std::make_unique<Child>(lab.in("SERVER_NS", argv));
        target = lab["SERVER_ADDR"] + ":" + server->expect("listening");
    }
    ProbeRun probe(std::vector<std::string> extra) {
        std::vector<std::string> argv{rstwatch_bin(), "probe", target};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run_probe(lab.in("CLIENT_NS", argv));
    }
};

void expect_brackets_the_firewall(const ProbeRun &r, const std::string &behaviour,
                                  const std::string &error) {
    EXPECT_EQ(r.rc, 0) << r.err;
    const json &s = r.summary();
    ASSERT_TRUE(s.is_object());
    ASSERT_TRUE(s["bracket"]["lower_ms"].is_number() && s["bracket"]["upper_ms"].is_number())
        << s.dump(2);
    // The path remembered the connection at lower_ms and had forgotten it at upper_ms.
    EXPECT_LE(s["bracket"]["lower_ms"].get<int>(), kCtTimeoutMs) << s.dump(2);
    EXPECT_GE(s["bracket"]["upper_ms"].get<int>(), kCtTimeoutMs) << s.dump(2);
    // Whole-second keepalive times: within about a second plus the timer's slack.
    EXPECT_LT(s["bracket"]["upper_ms"].get<int>() - s["bracket"]["lower_ms"].get<int>(), 1600)
        << s.dump(2);
    EXPECT_EQ(s["middlebox"], true);
    EXPECT_EQ(s["behaviour"], behaviour);
    EXPECT_TRUE(s["closed_by_server_ms"].is_null());
    EXPECT_TRUE(s["stop_reason"] == "resolution" || s["stop_reason"] == "precision") << s.dump(2);
    EXPECT_TRUE(s["preset"].is_null()); // no named preset is 4 s
    ASSERT_TRUE(s["recommendation"].is_object());
    EXPECT_LT(s["recommendation"]["idle_s"].get<int>() * 1000, kCtTimeoutMs);
    EXPECT_NE(s["recommendation"]["sysctl"].get<std::string>().find(
                  "net.ipv4.tcp_keepalive_time=" +
                  std::to_string(s["recommendation"]["idle_s"].get<int>())),
              std::string::npos);
    int deaths = 0, alive = 0;
    for (auto &res : r.of("probe_result")) {
        const std::string o = res["outcome"];
        EXPECT_NE(o, "closed_by_server") << res.dump();
        EXPECT_NE(o, "error") << res.dump();
        if (o == "alive") {
            ++alive;
            EXPECT_LT(res["evidence_ms"].get<int>(), kCtTimeoutMs) << res.dump();
        }
        if (o == behaviour) {
            ++deaths;
            EXPECT_EQ(res["error"], error);
            EXPECT_GE(res["evidence_ms"].get<int>(), kCtTimeoutMs) << res.dump();
            EXPECT_GE(res["evidence_ms"].get<int>(), res["keepidle_s"].get<int>() * 1000);
        }
        EXPECT_TRUE(o == "alive" || o == behaviour || o == "cancelled") << res.dump();
    }
    EXPECT_GE(alive, 1);
    EXPECT_GE(deaths, 1);
    expect_schema_valid(r.lines);
}

} // namespace

TEST(ProbeLab, RejectingFirewallTimeoutIsBracketedAsReset) {
    RW_REQUIRE_LAB_HERE();
    LabProbe p("reject");
    ASSERT_TRUE(p.lab.up() && p.server);
    auto r = p.probe({"--min", "1s", "--max", "12s", "--connections", "4", "--max-time", "45s"});
    expect_brackets_the_firewall(r, "reset", "ECONNRESET");
    auto start = r.of("probe_start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_EQ(start[0]["target"]["addr"], p.lab["SERVER_ADDR"]);
    EXPECT_EQ(start[0]["family"], "ipv4");
    EXPECT_EQ(start[0]["config"]["connections"], 4);
}

// Drop mode without touching tcp_retries2: keepalive gives up after TCP_KEEPCNT (1).
TEST(ProbeLab, DroppingFirewallTimeoutIsBracketedAsDrop) {
    RW_REQUIRE_LAB_HERE();
    LabProbe p("drop");
    ASSERT_TRUE(p.lab.up() && p.server);
    auto r = p.probe({"--min", "1s", "--max", "12s", "--connections", "4", "--max-time", "45s"});
    expect_brackets_the_firewall(r, "drop", "ETIMEDOUT");
    for (auto &res : r.of("probe_result"))
        if (res["outcome"] == "drop") // the end came one TCP_KEEPINTVL (1 s) after the probe
            EXPECT_NEAR(res["ended_after_ms"].get<int>() - res["evidence_ms"].get<int>(), 1000, 1);
}

// The server ends idle connections itself (FIN) after 2 s, before the 4 s
// firewall would: closed_by_server with the time, no middlebox claimed.
TEST(ProbeLab, ServerClosingIdleConnectionsIsNotTheMiddlebox) {
    RW_REQUIRE_LAB_HERE();
    LabProbe p("reject", {"--close-after-ms", "2000"});
    ASSERT_TRUE(p.lab.up() && p.server);
    auto r = p.probe({"--min", "1s", "--max", "12s", "--connections", "4", "--max-time", "45s"});
    EXPECT_EQ(r.rc, 0) << r.err;
    const json &s = r.summary();
    EXPECT_EQ(s["middlebox"], false) << s.dump(2);
    EXPECT_TRUE(s["behaviour"].is_null());
    EXPECT_TRUE(s["preset"].is_null());
    EXPECT_TRUE(s["recommendation"].is_null());
    EXPECT_TRUE(s["bracket"]["upper_ms"].is_null());
    EXPECT_EQ(s["stop_reason"], "server_first");
    ASSERT_TRUE(s["closed_by_server_ms"].is_number()) << s.dump(2);
    EXPECT_NEAR(s["closed_by_server_ms"].get<double>(), 2000, 300);
    EXPECT_NE(s["explanation"].get<std::string>().find("server closes idle connections"),
              std::string::npos);
    int closed = 0;
    for (auto &res : r.of("probe_result")) {
        EXPECT_NE(res["outcome"], "reset") << res.dump();
        EXPECT_NE(res["outcome"], "drop") << res.dump();
        if (res["outcome"] == "closed_by_server") {
            ++closed;
            EXPECT_EQ(res["detail"], "fin");
            EXPECT_NEAR(res["evidence_ms"].get<double>(), 2000, 300);
        }
    }
    EXPECT_GE(closed, 1);
    expect_schema_valid(r.lines);
}

// Its own RST (SO_LINGER 0) at 2 s: an RST before any keepalive probe left
// cannot be the firewall answering one.
TEST(ProbeLab, ServerResetBeforeTheProbeIsTheServers) {
    RW_REQUIRE_LAB_HERE();
    LabProbe p("reject", {"--abort-after-ms", "2000"});
    ASSERT_TRUE(p.lab.up() && p.server);
    auto r = p.probe({"--ladder", "1s,5s,8s", "--max-time", "30s"});
    EXPECT_EQ(r.rc, 0) << r.err;
    const json &s = r.summary();
    EXPECT_EQ(s["middlebox"], false) << s.dump(2);
    EXPECT_NEAR(s["closed_by_server_ms"].get<double>(), 2000, 300);
    bool seen = false;
    for (auto &res : r.of("probe_result"))
        if (res["keepidle_s"] == 5 && res["outcome"] == "closed_by_server") {
            seen = true;
            EXPECT_EQ(res["detail"], "rst_before_probe");
            EXPECT_EQ(res["error"], "ECONNRESET");
        }
    EXPECT_TRUE(seen) << json(r.lines).dump(2);
    expect_schema_valid(r.lines);
}

// ---- unprivileged, on loopback ----

TEST(ProbeLoopback, Ipv6LadderAllAliveInText) {
    Child server({idle_server_bin(), "--addr", "::1", "--duration-ms", "20000"});
    const std::string port = server.expect("listening");
    Child c({rstwatch_bin(), "probe", "[::1]:" + port, "--ladder", "1s,2s", "--format", "text"});
    std::string text;
    for (auto &l : c.read_all(20s))
        text += l + "\n";
    EXPECT_EQ(c.wait(), 0) << c.stderr_text();
    EXPECT_NE(text.find("IPv6"), std::string::npos) << text;
    EXPECT_NE(text.find("idle 1s: alive at 1."), std::string::npos) << text;
    EXPECT_NE(text.find("idle 2s: alive at 2."), std::string::npos) << text;
    EXPECT_NE(text.find("every connection survived"), std::string::npos) << text;
}

TEST(ProbeLoopback, NothingListeningIsExitFourWithASummary) {
    const int port = free_port();
    auto r = run_probe({rstwatch_bin(), "probe", "127.0.0.1:" + std::to_string(port), "--ladder",
                        "1s", "--max-time", "10s"});
    EXPECT_EQ(r.rc, 4) << r.err;
    EXPECT_NE(r.err.find("no connection"), std::string::npos) << r.err;
    EXPECT_EQ(r.summary()["stop_reason"], "no_connection");
    auto res = r.of("probe_result");
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0]["outcome"], "error");
    EXPECT_EQ(res[0]["error"], "ECONNREFUSED");
    expect_schema_valid(r.lines);
}

TEST(ProbeLoopback, BadTargetIsExitTwoNamingIt) {
    auto r = run_probe({rstwatch_bin(), "probe", "127.0.0.1"});
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.err.find("'127.0.0.1'"), std::string::npos) << r.err;
    EXPECT_TRUE(r.lines.empty());
}
