// Privileged: rstwatch audit against real connections.
#include <chrono>

#include "harness.hpp"

using namespace rwtest;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<json> audit(std::vector<std::string> args) {
    std::vector<std::string> argv{rstwatch_bin(), "audit"};
    argv.insert(argv.end(), args.begin(), args.end());
    Child a(argv);
    std::vector<json> out;
    for (auto &l : a.read_all(30s)) {
        json j = json::parse(l, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << l;
        out.push_back(j);
    }
    EXPECT_EQ(a.wait(), 0) << a.stderr_text();
    return out;
}

const json *socket_of(const std::vector<json> &events, pid_t pid, int local_port) {
    for (auto &e : events)
        if (e["event"] == "audit_socket" && e["process"]["pid"] == pid &&
            e["local"]["port"] == local_port)
            return &e;
    return nullptr;
}

const json *process_of(const std::vector<json> &events, pid_t pid) {
    for (auto &e : events)
        if (e["event"] == "audit_process" && e["process"]["pid"] == pid) return &e;
    return nullptr;
}

// CLOCK_MONOTONIC in ms: the same clock rw_peer prints with its milestones.
long long mono_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
}

} // namespace

TEST(Audit, NamesEachProcessWithItsKeepaliveStateAndIdleTime) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--hold-ms", "8000"});
    int sport = std::stoi(server.expect("listening"));
    Child on({peer_bin(), "client", "--port", std::to_string(sport), "--keepalive", "--keepidle",
              "600", "--hold-ms", "8000", "--name", "rw_audit_on"});
    const std::string on_line = on.expect("connected");
    const int p_on = int(field(on_line, 0));
    Child server2({peer_bin(), "server", "--hold-ms", "8000"});
    int sport2 = std::stoi(server2.expect("listening"));
    Child off({peer_bin(), "client", "--port", std::to_string(sport2), "--hold-ms", "8000",
               "--name", "rw_audit_off"});
    const std::string off_line = off.expect("connected");
    const int p_off = int(field(off_line, 0));
    sleep(2);

    // The snapshot is taken while audit runs: bracket it.
    const long long before = mono_ms();
    auto events = audit({});
    const long long after = mono_ms();
    const json *a = socket_of(events, on.pid(), p_on);
    const json *b = socket_of(events, off.pid(), p_off);
    ASSERT_TRUE(a && b) << json(events).dump(2);
    auto idle_ok = [&](const json &e, const std::string &line) {
        const long long connected = field(line, 1), idle = e["idle_ms"].get<long long>();
        EXPECT_GE(idle, before - connected - 300) << e.dump();
        EXPECT_LE(idle, after - connected + 300) << e.dump();
    };
    idle_ok(*a, on_line);
    idle_ok(*b, off_line);
    EXPECT_EQ((*a)["process"]["comm"], "rw_audit_on");
    EXPECT_EQ((*a)["keepalive"]["enabled"], true);
    EXPECT_EQ((*a)["keepalive"]["idle_s"], 600);
    EXPECT_EQ((*a)["keepalive"]["source"], "socket");
    EXPECT_EQ((*a)["remote"]["port"], sport);
    EXPECT_EQ((*a)["state"], "ESTABLISHED");
    EXPECT_EQ((*a)["shared"], false);
    EXPECT_TRUE((*a)["risk"].is_null());
    EXPECT_EQ((*b)["keepalive"]["enabled"], false);
    EXPECT_EQ((*b)["keepalive"]["source"], "sysctl");

    const json *pa = process_of(events, on.pid());
    const json *pb = process_of(events, off.pid());
    ASSERT_TRUE(pa && pb);
    EXPECT_EQ((*pa)["sockets"], 1);
    EXPECT_EQ((*pa)["without_keepalive"], 0);
    EXPECT_EQ((*pb)["sockets"], 1);
    EXPECT_EQ((*pb)["without_keepalive"], 1);
    // The server side of each connection is listed under the server process.
    EXPECT_TRUE(process_of(events, server.pid()));
}

TEST(Audit, ConnectionInATestNetnsShowsItsInodeAndSysctl) {
    RW_REQUIRE_BPF();
    NetNs ns("audit");
    ns.exec("sysctl -qw net.ipv4.tcp_keepalive_time=4321 net.ipv4.tcp_keepalive_intvl=11");
    Child server(ns.wrap({peer_bin(), "server", "--hold-ms", "8000"}));
    int sport = std::stoi(server.expect("listening"));
    Child client(ns.wrap({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms",
                          "8000", "--name", "rw_audit_ns"}));
    int cport = std::stoi(client.expect("connected"));
    auto events = audit({"--comm", "rw_audit_ns"});
    const json *a = socket_of(events, client.pid(), cport);
    ASSERT_TRUE(a) << json(events).dump(2);
    EXPECT_EQ((*a)["netns"], ns.inode());
    EXPECT_EQ((*a)["keepalive"]["idle_s"], 4321);
    EXPECT_EQ((*a)["keepalive"]["interval_s"], 11);
    EXPECT_EQ((*a)["keepalive"]["source"], "sysctl");
    // --comm filtered everything else.
    for (auto &e : events)
        EXPECT_EQ(e["process"]["comm"], "rw_audit_ns");
}

TEST(Audit, FiltersAndRiskAgainstAMiddleboxTimeout) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--hold-ms", "9000"});
    int sport = std::stoi(server.expect("listening"));
    Child old_idle({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "9000",
                    "--name", "rw_risk"});
    int p_old = std::stoi(old_idle.expect("connected"));
    Child server2({peer_bin(), "server", "--hold-ms", "9000"});
    int sport2 = std::stoi(server2.expect("listening"));
    Child fast({peer_bin(), "client", "--port", std::to_string(sport2), "--keepalive", "--keepidle",
                "1", "--keepintvl", "1", "--hold-ms", "9000", "--name", "rw_risk"});
    int p_fast = std::stoi(fast.expect("connected"));
    sleep(3);
    Child server3({peer_bin(), "server", "--hold-ms", "9000"});
    int sport3 = std::stoi(server3.expect("listening"));
    Child fresh({peer_bin(), "client", "--port", std::to_string(sport3), "--hold-ms", "9000",
                 "--name", "rw_risk"});
    int p_fresh = std::stoi(fresh.expect("connected"));

    auto events = audit({"--comm", "rw_risk", "--middlebox-timeout", "2s"});
    const json *e_old = socket_of(events, old_idle.pid(), p_old);
    const json *e_fast = socket_of(events, fast.pid(), p_fast);
    const json *e_fresh = socket_of(events, fresh.pid(), p_fresh);
    ASSERT_TRUE(e_old && e_fast && e_fresh) << json(events).dump(2);
    EXPECT_EQ((*e_old)["risk"], "expired");
    EXPECT_EQ((*e_fast)["risk"], "protected");
    EXPECT_EQ((*e_fresh)["risk"], "exposed");
    // Riskiest first.
    EXPECT_EQ(events[0]["event"], "audit_process");
    EXPECT_EQ(events[0]["process"]["pid"], old_idle.pid());
    EXPECT_EQ(events[0]["risk"]["expired"], 1);

    auto by_port = audit({"--port", std::to_string(sport2)});
    ASSERT_FALSE(by_port.empty());
    for (auto &e : by_port)
        if (e["event"] == "audit_socket")
            EXPECT_TRUE(e["local"]["port"] == sport2 || e["remote"]["port"] == sport2);

    auto idle = audit({"--comm", "rw_risk", "--min-idle", "2500ms"});
    std::size_t sockets = 0;
    for (auto &e : idle)
        if (e["event"] == "audit_socket") {
            ++sockets;
            EXPECT_EQ(e["local"]["port"], p_old);
        }
    EXPECT_EQ(sockets, 1u);
}

TEST(Audit, TextModeListsRiskiestFirst) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--hold-ms", "6000"});
    int sport = std::stoi(server.expect("listening"));
    Child c({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "6000", "--name",
             "rw_text_audit"});
    c.expect("connected");
    sleep(1);
    Child a({rstwatch_bin(), "audit", "--format", "text", "--comm", "rw_text_audit",
             "--middlebox-timeout", "500ms"});
    auto lines = a.read_all(20s);
    EXPECT_EQ(a.wait(), 0);
    ASSERT_GE(lines.size(), 3u);
    EXPECT_NE(lines[0].find("PROCESS"), std::string::npos);
    EXPECT_NE(lines[1].find("rw_text_audit[" + std::to_string(c.pid()) + "]"), std::string::npos);
    std::string all;
    for (auto &l : lines)
        all += l + "\n";
    EXPECT_NE(all.find("expired"), std::string::npos) << all;
    EXPECT_EQ(all.find("\033["), std::string::npos) << "no colour when stdout is not a terminal";
}

TEST(Audit, ProcessAndSocketCarryTheirCgroup) {
    RW_REQUIRE_BPF();
    TestCgroup cg("audit");
    Child server({peer_bin(), "server", "--hold-ms", "5000"});
    int sport = std::stoi(server.expect("listening"));
    Child client(cg.wrap({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms",
                          "5000", "--name", "rw_audit_cg"}));
    int cport = std::stoi(client.expect("connected"));
    auto events = audit({"--comm", "rw_audit_cg"});
    const json *s = socket_of(events, client.pid(), cport);
    const json *p = process_of(events, client.pid());
    ASSERT_TRUE(s && p) << json(events).dump(2);
    EXPECT_EQ((*s)["cgroup"], cg.relative());
    EXPECT_EQ((*p)["cgroup"], cg.relative());
    EXPECT_TRUE((*s)["container_id"].is_null());
}
