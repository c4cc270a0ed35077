// Privileged: the idle-timeout incident reproduced for real with scripts/lab.sh
// (client -- firewall with conntrack -- server, in network namespaces), and what
// rstwatch trace, audit and doctor say about it. The firewall forgets a
// connection idle for 4 s; clients idle 7 s and then write.
#include <fstream>
#include <thread>
#include <unistd.h>

#include "harness.hpp"
#include "lab_support.hpp"

using namespace rwtest;

namespace {

constexpr int kCtTimeoutS = 4;
constexpr int kIdleMs = 7000;

// A lab whose firewall forgets a connection idle for kCtTimeoutS.
LabNet make_lab(const std::string &mode) {
    return LabNet("rwlt", mode, kCtTimeoutS);
}

// `rstwatch trace` of the client's namespace against the firewall's timeout.
Session trace_lab(const LabNet &lab) {
    return trace_client_netns(lab, {"--middlebox-timeout", std::to_string(kCtTimeoutS) + "s"});
}

// A server in the server namespace holding its connection, and a client that
// connects through the firewall, idles, writes once and reports.
struct Pair {
    std::unique_ptr<Child> server, client;
    int sport = 0, cport = 0;
    long long connected_ms = 0; // the client's CLOCK_MONOTONIC at connect
};

// "PORT MONO_MS" (rw_peer prints its own monotonic clock with milestones).
long long second_field(const std::string &s) {
    auto sp = s.find(' ');
    return sp == std::string::npos ? 0 : std::stoll(s.substr(sp + 1));
}

// `cg`: the client runs inside that cgroup.
Pair connect_pair(const LabNet &lab, std::vector<std::string> client_opts, int idle_ms, int hold_ms,
                  const char *comm = "rw_lab_cli", bool wait_line = false,
                  const TestCgroup *cg = nullptr) {
    Pair p;
    p.server = std::make_unique<Child>(
        lab.in("SERVER_NS", {peer_bin(), "server", "--addr", lab["SERVER_ADDR"], "--port", "0",
                             "--hold-ms", "40000", "--name", "rw_lab_srv"}));
    p.sport = std::stoi(p.server->expect("listening"));
    std::vector<std::string> argv{peer_bin(),
                                  "client",
                                  "--addr",
                                  lab["SERVER_ADDR"],
                                  "--port",
                                  std::to_string(p.sport),
                                  "--idle-ms",
                                  std::to_string(idle_ms),
                                  "--write",
                                  "--hold-ms",
                                  std::to_string(hold_ms),
                                  "--name",
                                  comm};
    if (wait_line) argv.push_back("--wait-line");
    argv.insert(argv.end(), client_opts.begin(), client_opts.end());
    argv = lab.in("CLIENT_NS", argv);
    p.client = std::make_unique<Child>(cg ? cg->wrap(argv) : argv, wait_line);
    std::string connected = p.client->expect("connected");
    p.cport = std::stoi(connected);
    p.connected_ms = second_field(connected);
    return p;
}

// A connected client's run to its end, and what `s` traced meanwhile.
struct Run {
    Pair p;
    long long idle = -1; // connect to write as the client lived it, whatever the scheduling delays
    std::string result;  // "OK", "errno 104", ...
    std::vector<json> events;
};

// `await_write` false: a keepalive probe meets the firewall before the write.
Run finish_run(Pair p, Session &s, std::chrono::milliseconds result_timeout,
               bool await_write = true) {
    Run r{std::move(p)};
    if (await_write) r.idle = std::stoll(r.p.client->expect("wrote", 20s)) - r.p.connected_ms;
    r.result = r.p.client->expect("result", result_timeout);
    r.p.client->wait();
    r.events = s.stop();
    return r;
}

// Keepalive every 2 s (retry 1 s) beats the firewall's 4 s, whether it resets
// or drops: the write after the idle period goes through, and rstwatch reports
// nothing for the connection.
void expect_fast_keepalive_survives(const std::string &mode) {
    LabNet lab = make_lab(mode);
    ASSERT_TRUE(lab.up());
    Session s = trace_lab(lab);
    auto [p, idle, result, events] = finish_run(
        connect_pair(lab, {"--keepalive", "--keepidle", "2", "--keepintvl", "1"}, kIdleMs, 1500), s,
        10s);
    EXPECT_EQ(result, "OK");
    EXPECT_TRUE(owned_by(events, "tcp_reset", p.client->pid()).empty()) << json(events).dump(2);
    EXPECT_TRUE(owned_by(events, "tcp_timeout", p.client->pid()).empty()) << json(events).dump(2);
}

std::vector<json> parse_lines(const std::vector<std::string> &lines) {
    std::vector<json> out;
    for (auto &l : lines) {
        json j = json::parse(l, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
        if (!j.is_discarded()) out.push_back(std::move(j));
    }
    return out;
}

// Real doctor output against schema/doctor_check.schema.json.
void expect_schema_valid(const std::vector<json> &records) {
    std::string path = "/tmp/rwtest-lab-" + std::to_string(getpid()) + ".ndjson";
    {
        std::ofstream out(path);
        for (auto &r : records)
            out << r.dump() << "\n";
    }
    std::string out = sh("/usr/bin/python3 " + std::string(RW_SOURCE_DIR) +
                         "/scripts/validate-events.py --require doctor_check " + path + " 2>&1");
    EXPECT_NE(out.find("valid: " + std::to_string(records.size()) + " line(s)"), std::string::npos)
        << out;
    unlink(path.c_str());
}

const json *check_named(const std::vector<json> &records, const std::string &id) {
    for (auto &r : records)
        if (r.value("event", "") == "doctor_check" && r.value("check", "") == id) return &r;
    return nullptr;
}

} // namespace

// Issue 4, scenario 1: keepalive off, idle past the timeout, then a write.
TEST(LabReject, KeepaliveOffGetsTheFirewallsResetDiagnosed) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("reject");
    ASSERT_TRUE(lab.up());
    Session s = trace_lab(lab);
    auto [p, idle, result, events] = finish_run(connect_pair(lab, {}, kIdleMs, 3000), s, 10s);
    EXPECT_EQ(result, "errno 104"); // ECONNRESET

    auto rst = owned_by(events, "tcp_reset", p.client->pid());
    ASSERT_EQ(rst.size(), 1u) << json(events).dump(2);
    const json &r = rst[0];
    EXPECT_EQ(r["direction"], "received");
    EXPECT_EQ(r["process"]["comm"], "rw_lab_cli");
    EXPECT_EQ(r["owner_source"], "connect");
    EXPECT_EQ(r["local"]["addr"], lab["CLIENT_ADDR"]);
    EXPECT_EQ(r["local"]["port"], p.cport);
    EXPECT_EQ(r["remote"]["addr"], lab["SERVER_ADDR"]);
    EXPECT_EQ(r["remote"]["port"], p.sport);
    EXPECT_EQ(r["netns"], lab.inode("CLIENT_NETNS_INODE"));
    EXPECT_EQ(r["state"], "ESTABLISHED");
    EXPECT_EQ(r["keepalive"]["enabled"], false);
    EXPECT_NEAR(r["idle_ms"].get<double>(), double(idle), 500);
    EXPECT_EQ(r["verdict"], "keepalive_disabled");
    // The server is alive on this host and sent nothing: the firewall forged it.
    EXPECT_EQ(r["origin"], "middlebox");
    EXPECT_TRUE(of_type(events, "tcp_timeout").empty()) << json(events).dump(2);
}

// Scenario 2: keepalive below the timeout keeps the firewall's state alive.
TEST(LabReject, KeepaliveBelowTheTimeoutSurvives) {
    RW_REQUIRE_BPF_LAB();
    expect_fast_keepalive_survives("reject");
}

// Scenario 3: keepalive on, but its idle time (10 s) is longer than the idle
// period, so the write after 7 s meets the firewall's reset.
TEST(LabReject, KeepaliveLongerThanTheTimeoutIsTooSlow) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("reject");
    ASSERT_TRUE(lab.up());
    Session s = trace_lab(lab);
    auto [p, idle, result, events] =
        finish_run(connect_pair(lab, {"--keepalive", "--keepidle", "10"}, kIdleMs, 3000), s, 10s);
    EXPECT_EQ(result, "errno 104");
    auto rst = owned_by(events, "tcp_reset", p.client->pid());
    ASSERT_EQ(rst.size(), 1u) << json(events).dump(2);
    EXPECT_EQ(rst[0]["direction"], "received");
    EXPECT_EQ(rst[0]["keepalive"]["enabled"], true);
    EXPECT_EQ(rst[0]["keepalive"]["idle_s"], 10);
    EXPECT_EQ(rst[0]["keepalive"]["source"], "socket");
    EXPECT_NEAR(rst[0]["idle_ms"].get<double>(), double(idle), 500);
    EXPECT_EQ(rst[0]["verdict"], "keepalive_too_slow");
    EXPECT_EQ(rst[0]["origin"], "middlebox");
}

// Keepalive idle 5 s against the 4 s firewall, no timeout given to rstwatch:
// the firewall answers the first probe with an RST, at an idle time a little
// past the keepalive idle. Still keepalive_too_slow (diagnose.cpp).
TEST(LabReject, ResetAnsweringTheFirstProbeIsTooSlow) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("reject");
    ASSERT_TRUE(lab.up());
    Session s = trace_client_netns(lab, {"--idle-threshold", "3s"});
    auto [p, idle, result, events] = finish_run(
        connect_pair(lab, {"--keepalive", "--keepidle", "5", "--keepintvl", "1"}, kIdleMs, 3000), s,
        20s, /*await_write=*/false);
    EXPECT_EQ(result, "errno 104");
    auto rst = owned_by(events, "tcp_reset", p.client->pid());
    ASSERT_EQ(rst.size(), 1u) << json(events).dump(2);
    // Before the write: the probe at 5 s (+ timer slack) got the reset.
    EXPECT_GE(rst[0]["idle_ms"].get<int>(), 5000);
    EXPECT_LT(rst[0]["idle_ms"].get<int>(), kIdleMs - 500);
    EXPECT_EQ(rst[0]["verdict"], "keepalive_too_slow") << rst[0].dump(2);
    EXPECT_NE(rst[0]["explanation"].get<std::string>().find("first probe"), std::string::npos);
}

// Scenario 4: rstwatch doctor inside the firewall's namespace.
TEST(LabReject, DoctorInTheFirewallNamespaceFailsKeepaliveTime) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("reject");
    ASSERT_TRUE(lab.up());
    Child doctor(lab.in("FIREWALL_NS", {rstwatch_bin(), "doctor"}));
    auto records = parse_lines(doctor.read_all(30s));
    EXPECT_EQ(doctor.wait(), 1) << doctor.stderr_text(); // a check failed
    expect_schema_valid(records);
    const json *t = check_named(records, "tcp_keepalive_time");
    ASSERT_TRUE(t) << json(records).dump(2);
    EXPECT_EQ((*t)["status"], "fail");
    EXPECT_EQ((*t)["netns"], lab.inode("FIREWALL_NETNS_INODE"));
    EXPECT_EQ((*t)["netns_name"], lab["FIREWALL_NS"]);
    const std::string observed = (*t)["observed"];
    EXPECT_NE(observed.find("net.ipv4.tcp_keepalive_time = 7200 s"), std::string::npos) << observed;
    EXPECT_NE(observed.find("conntrack established timeout 4 s"), std::string::npos) << observed;
    const std::string fix = (*t)["fix"];
    EXPECT_NE(fix.find("ip netns exec " + lab["FIREWALL_NS"] +
                       " sysctl -w net.ipv4.tcp_keepalive_time=2 net.ipv4.tcp_keepalive_intvl=1"),
              std::string::npos)
        << fix;
    const json *ct = check_named(records, "conntrack_tcp_timeout_established");
    ASSERT_TRUE(ct);
    EXPECT_EQ((*ct)["status"], "warn");
    const json *conns = check_named(records, "keepalive_off_connections");
    ASSERT_TRUE(conns);
    EXPECT_EQ((*conns)["skipped"], false);

    // The same as a readable report.
    Child text(lab.in("FIREWALL_NS", {rstwatch_bin(), "doctor", "--format", "text"}));
    std::string report;
    for (auto &l : text.read_all(30s))
        report += l + "\n";
    EXPECT_EQ(text.wait(), 1);
    EXPECT_NE(report.find("FAIL  tcp_keepalive_time"), std::string::npos) << report;
    EXPECT_NE(report.find("(" + lab["FIREWALL_NS"] + ")"), std::string::npos) << report;
}

// Issue 11, silent drop: keepalive off -> the write is retransmitted until
// tcp_retries2 (3 in the client's namespace) gives up: ETIMEDOUT, no RST.
TEST(LabDrop, KeepaliveOffTimesOutAfterRetransmissions) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("drop");
    ASSERT_TRUE(lab.up());
    Session s = trace_lab(lab);
    auto [p, idle, result, events] = finish_run(connect_pair(lab, {}, kIdleMs, 15000), s, 30s);
    EXPECT_EQ(result, "errno 110"); // ETIMEDOUT

    auto to = owned_by(events, "tcp_timeout", p.client->pid());
    ASSERT_EQ(to.size(), 1u) << json(events).dump(2);
    const json &t = to[0];
    EXPECT_EQ(t["process"]["comm"], "rw_lab_cli");
    EXPECT_EQ(t["cause"], "retransmit");
    EXPECT_EQ(t["local"]["port"], p.cport);
    EXPECT_EQ(t["remote"]["addr"], lab["SERVER_ADDR"]);
    EXPECT_EQ(t["remote"]["port"], p.sport);
    EXPECT_EQ(t["keepalive"]["enabled"], false);
    // The silence before the write, not including the retransmissions.
    EXPECT_NEAR(t["idle_ms"].get<double>(), double(idle), 500);
    EXPECT_GT(t["unanswered_ms"].get<int>(), 1000);
    EXPECT_GE(t["retransmits"].get<int>(), 1);
    EXPECT_EQ(t["error"], -110);
    EXPECT_EQ(t["verdict"], "keepalive_disabled");
    // Silent: nobody sent or received a reset on this connection.
    EXPECT_TRUE(owned_by(events, "tcp_reset", p.client->pid()).empty()) << json(events).dump(2);
}

TEST(LabDrop, KeepaliveLongerThanTheTimeoutDiesTooSlow) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("drop");
    ASSERT_TRUE(lab.up());
    Session s = trace_lab(lab);
    auto [p, idle, result, events] = finish_run(
        connect_pair(lab, {"--keepalive", "--keepidle", "10", "--keepintvl", "1"}, kIdleMs, 15000),
        s, 30s, /*await_write=*/false);
    EXPECT_EQ(result, "errno 110");
    auto to = owned_by(events, "tcp_timeout", p.client->pid());
    ASSERT_EQ(to.size(), 1u) << json(events).dump(2);
    const std::string cause = to[0]["cause"];
    EXPECT_TRUE(cause == "retransmit" || cause == "keepalive") << cause;
    EXPECT_EQ(to[0]["keepalive"]["enabled"], true);
    EXPECT_EQ(to[0]["keepalive"]["idle_s"], 10);
    EXPECT_EQ(to[0]["verdict"], "keepalive_too_slow") << to[0].dump(2);
}

TEST(LabDrop, KeepaliveBelowTheTimeoutSurvivesWithoutEvents) {
    RW_REQUIRE_BPF_LAB();
    expect_fast_keepalive_survives("drop");
}

// Audit (and doctor) with a known timeout while the lab runs: the connection
// idle past the firewall's timeout is "expired" before anyone writes on it, the
// one with fast keepalive is "protected". Then the expired one proves it.
TEST(LabAudit, IdleConnectionIsExpiredAndKeepaliveOneProtected) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("reject");
    ASSERT_TRUE(lab.up());
    Pair idle = connect_pair(lab, {}, 0, 3000, "rw_lab_idle", /*wait_line=*/true);
    Pair kept = connect_pair(lab, {"--keepalive", "--keepidle", "2", "--keepintvl", "1"}, 0, 3000,
                             "rw_lab_kept", /*wait_line=*/true);
    // Let both idle past the firewall's 4 s; the keepalive one probes meanwhile.
    std::this_thread::sleep_for(std::chrono::milliseconds(kCtTimeoutS * 1000 + 1500));

    Child audit({rstwatch_bin(), "audit", "--middlebox-timeout", "4s"});
    auto records = parse_lines(audit.read_all(30s));
    EXPECT_EQ(audit.wait(), 0) << audit.stderr_text();
    auto socket_of = [&](pid_t pid) -> const json * {
        for (auto &r : records)
            if (r.value("event", "") == "audit_socket" && r["process"]["pid"] == pid) return &r;
        return nullptr;
    };
    const json *expired = socket_of(idle.client->pid());
    const json *prot = socket_of(kept.client->pid());
    ASSERT_TRUE(expired && prot) << json(records).dump(2);
    EXPECT_EQ((*expired)["risk"], "expired");
    EXPECT_EQ((*expired)["local"]["port"], idle.cport);
    EXPECT_EQ((*expired)["netns"], lab.inode("CLIENT_NETNS_INODE"));
    EXPECT_GE((*expired)["idle_ms"].get<int>(), kCtTimeoutS * 1000);
    EXPECT_EQ((*prot)["risk"], "protected");
    EXPECT_EQ((*prot)["keepalive"]["idle_s"], 2);
    for (auto &r : records)
        if (r.value("event", "") == "audit_process" && r["process"]["pid"] == idle.client->pid())
            EXPECT_EQ(r["risk"]["expired"], 1);

    // doctor in the client's namespace names the process and fails.
    Child doctor(lab.in("CLIENT_NS", {rstwatch_bin(), "doctor", "--middlebox-timeout", "4s"}));
    auto checks = parse_lines(doctor.read_all(30s));
    EXPECT_EQ(doctor.wait(), 1);
    expect_schema_valid(checks);
    const json *conns = check_named(checks, "keepalive_off_connections");
    ASSERT_TRUE(conns) << json(checks).dump(2);
    EXPECT_EQ((*conns)["status"], "fail");
    bool named = false;
    for (auto &pr : (*conns)["processes"])
        if (pr["pid"] == idle.client->pid()) {
            named = true;
            EXPECT_EQ(pr["comm"], "rw_lab_idle");
            EXPECT_EQ(pr["without_keepalive"], 1);
            EXPECT_EQ(pr["expired"], 1);
        }
    EXPECT_TRUE(named) << conns->dump(2);

    // "Expired" was right: the next write meets the firewall's reset.
    idle.client->write_stdin("go\n");
    kept.client->write_stdin("go\n");
    EXPECT_EQ(idle.client->expect("result", 10s), "errno 104");
    EXPECT_EQ(kept.client->expect("result", 10s), "OK");
}

// Issue 6 in the lab: the application never enables keepalive, but its cgroup
// is enforced with an idle below the firewall's timeout, so the connection
// outlives an idle period that otherwise gets it reset.
TEST(LabReject, EnforcedKeepaliveKeepsAnUnmodifiedApplicationAlive) {
    RW_REQUIRE_BPF_LAB();
    LabNet lab = make_lab("reject");
    ASSERT_TRUE(lab.up());
    TestCgroup cg("lab-enforce");
    Child enforce({rstwatch_bin(), "enforce", "--cgroup", cg.relative(), "--idle", "2s",
                   "--interval", "1s", "--middlebox-timeout", std::to_string(kCtTimeoutS) + "s"});
    auto ready = enforce.read_line(20s);
    ASSERT_TRUE(ready && ready->find("\"enforce_start\"") != std::string::npos)
        << (ready ? *ready : "") << enforce.stderr_text();
    Session s = trace_lab(lab);

    // Exactly the client of scenario 1 (no keepalive option), inside the cgroup.
    auto [p, idle, result, events] = finish_run(
        connect_pair(lab, {}, kIdleMs, 1500, "rw_lab_enf", /*wait_line=*/false, &cg), s, 10s);
    EXPECT_EQ(result, "OK");
    const Child &client = *p.client;
    const int cport = p.cport;
    EXPECT_TRUE(owned_by(events, "tcp_reset", client.pid()).empty()) << json(events).dump(2);
    EXPECT_TRUE(owned_by(events, "tcp_timeout", client.pid()).empty()) << json(events).dump(2);

    enforce.signal(SIGINT);
    bool applied = false;
    for (auto &line : enforce.read_all(20s)) {
        json e = json::parse(line, nullptr, false);
        if (e.is_object() && e["event"] == "keepalive_enforced" && e["local"]["port"] == cport) {
            applied = true;
            EXPECT_EQ(e["process"]["pid"], client.pid());
            EXPECT_EQ(e["previous"]["enabled"], false);
            EXPECT_EQ(e["applied"]["enabled"], true);
            EXPECT_EQ(e["applied"]["idle_s"], 2);
            EXPECT_EQ(e["dry_run"], false);
        }
    }
    EXPECT_TRUE(applied) << "no keepalive_enforced event for the client's connection";
    EXPECT_EQ(enforce.wait(), 0) << enforce.stderr_text();
}
