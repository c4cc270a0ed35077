// Privileged: load the real trace programs and make the kernel send and receive
// real resets on loopback and in a test network namespace.
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.hpp"

using namespace rwtest;

namespace {

int sysctl_int(const std::string &name) {
    std::ifstream in("/proc/sys/" + name);
    int v = -1;
    in >> v;
    return v;
}

// Resets on either end of the connection between these two ports.
std::vector<json> resets_between(const std::vector<json> &events, int a, int b) {
    std::vector<json> out;
    for (auto &e : of_type(events, "tcp_reset")) {
        int l = e["local"]["port"], r = e["remote"]["port"];
        if ((l == a && r == b) || (l == b && r == a)) out.push_back(e);
    }
    return out;
}

const json *find_dir(const std::vector<json> &v, const std::string &dir) {
    for (auto &e : v)
        if (e["direction"] == dir) return &e;
    return nullptr;
}

} // namespace

TEST(TraceReset, LingerAbortIsOneReceivedAndOneSentWithOwners) {
    RW_REQUIRE_BPF();
    // In-kernel filter on our own port: other resets on the host (other test
    // suites, storms) never take space in this session's ring buffer.
    const int sport = free_port();
    Session s({"--events", "reset", "--port", std::to_string(sport)});
    Child server({peer_bin(), "server", "--port", std::to_string(sport), "--abort-after-ms", "2000",
                  "--name", "rw_srv"});
    server.expect("listening");
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "8000",
                  "--name", "rw_cli"});
    const std::string connected = client.expect("connected");
    const int cport = int(field(connected, 0));
    // The idle period as the two processes lived it (their own clocks).
    const long long idle = field(server.expect("aborted"), 0) - field(connected, 1);
    EXPECT_EQ(client.expect("result"), "errno 104"); // ECONNRESET
    client.wait();
    server.wait();
    auto events = s.stop();

    auto rst = resets_between(events, sport, cport);
    ASSERT_EQ(rst.size(), 2u) << json(rst).dump(2);
    const json *rx = find_dir(rst, "received");
    const json *tx = find_dir(rst, "sent");
    ASSERT_TRUE(rx && tx);

    EXPECT_EQ((*rx)["process"]["pid"], client.pid());
    EXPECT_EQ((*rx)["process"]["comm"], "rw_cli");
    EXPECT_EQ((*rx)["process"]["uid"], 0);
    EXPECT_EQ((*rx)["owner_source"], "connect");
    EXPECT_EQ((*rx)["local"]["addr"], "127.0.0.1");
    EXPECT_EQ((*rx)["local"]["port"], cport);
    EXPECT_EQ((*rx)["remote"]["port"], sport);
    EXPECT_EQ((*rx)["state"], "ESTABLISHED");
    EXPECT_EQ((*rx)["family"], "ipv4");
    EXPECT_EQ((*rx)["origin"], "peer");
    // Idle ~2 s before the abort: within +-300 ms of what the processes saw.
    EXPECT_NEAR((*rx)["idle_ms"].get<double>(), double(idle), 300);
    EXPECT_NEAR((*rx)["age_ms"].get<double>(), double(idle), 300);

    // The sent RST belongs to the server's accepted socket; its local port
    // survives the port release of an SO_LINGER 0 close.
    EXPECT_EQ((*tx)["process"]["pid"], server.pid());
    EXPECT_EQ((*tx)["process"]["comm"], "rw_srv");
    EXPECT_EQ((*tx)["local"]["port"], sport);
    EXPECT_EQ((*tx)["remote"]["port"], cport);
    EXPECT_EQ((*tx)["verdict"], "local_abort");
    EXPECT_EQ((*tx)["origin"], "local");

    struct stat st {};
    ASSERT_EQ(stat("/proc/self/ns/net", &st), 0);
    EXPECT_EQ((*rx)["netns"], st.st_ino);
}

TEST(TraceReset, ClosedPortGivesSentEventWithoutProcess) {
    RW_REQUIRE_BPF();
    int port = free_port();

    Session s({"--events", "reset", "--port", std::to_string(port)});
    Child client({peer_bin(), "refused", std::to_string(port), "--name", "rw_refused"});
    int cport = std::stoi(client.expect("local_port"));
    EXPECT_EQ(client.expect("errno"), "111"); // ECONNREFUSED
    client.wait();
    auto events = s.stop();

    auto rst = resets_between(events, port, cport);
    const json *tx = find_dir(rst, "sent");
    ASSERT_TRUE(tx) << "no sent reset for the closed port: " << json(events).dump(2);
    EXPECT_TRUE((*tx)["process"].is_null());
    EXPECT_EQ((*tx)["local"]["addr"], "127.0.0.1");
    EXPECT_EQ((*tx)["local"]["port"], port);
    EXPECT_EQ((*tx)["remote"]["addr"], "127.0.0.1");
    EXPECT_EQ((*tx)["remote"]["port"], cport);
    EXPECT_EQ((*tx)["verdict"], "no_socket");
    EXPECT_EQ((*tx)["kernel_reason"], "NO_SOCKET");
    EXPECT_TRUE((*tx)["keepalive"].is_null());

    const json *rx = find_dir(rst, "received");
    ASSERT_TRUE(rx);
    EXPECT_EQ((*rx)["process"]["pid"], client.pid());
    EXPECT_EQ((*rx)["state"], "SYN_SENT");
    EXPECT_EQ((*rx)["verdict"], "no_socket");
    EXPECT_TRUE((*rx)["idle_ms"].is_null());
    EXPECT_EQ((*rx)["origin"], "peer");
}

TEST(TraceReset, OwnerOfConnectionMadeBeforeStartIsNamed) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--abort-after-ms", "2500", "--name", "rw_early_srv"});
    int sport = std::stoi(server.expect("listening"));
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "10000",
                  "--name", "rw_early"});
    int cport = std::stoi(client.expect("connected"));

    // Connected before rstwatch exists: only the start-up scan can name it.
    Session s({"--events", "reset", "--port", std::to_string(sport)});
    EXPECT_GE(s.start_event()["seeded_sockets"].get<int>(), 2);
    server.expect("aborted");
    EXPECT_EQ(client.expect("result"), "errno 104");
    client.wait();
    server.wait();
    auto events = s.stop();

    auto rst = resets_between(events, sport, cport);
    const json *rx = find_dir(rst, "received");
    const json *tx = find_dir(rst, "sent");
    ASSERT_TRUE(rx && tx) << json(events).dump(2);
    EXPECT_EQ((*rx)["process"]["pid"], client.pid());
    EXPECT_EQ((*rx)["process"]["comm"], "rw_early");
    EXPECT_EQ((*rx)["owner_source"], "seeded");
    EXPECT_TRUE((*rx)["age_ms"].is_null()); // start unknown for seeded sockets
    EXPECT_EQ((*tx)["process"]["pid"], server.pid());
    EXPECT_EQ((*tx)["process"]["comm"], "rw_early_srv");
}

TEST(TraceReset, KeepaliveFromSocketAndFromSysctl) {
    RW_REQUIRE_BPF();
    const int sysctl_idle = sysctl_int("net/ipv4/tcp_keepalive_time");
    const int sysctl_intvl = sysctl_int("net/ipv4/tcp_keepalive_intvl");
    const int sysctl_probes = sysctl_int("net/ipv4/tcp_keepalive_probes");
    // Both clients share a name: the in-kernel --comm filter keeps exactly
    // their received resets, whatever else happens on the host.
    Session s({"--events", "reset", "--comm", "rw_ka_test"});

    Child srv_on({peer_bin(), "server", "--abort-after-ms", "500"});
    int p_on = std::stoi(srv_on.expect("listening"));
    Child with({peer_bin(), "client", "--port", std::to_string(p_on), "--keepalive", "--keepidle",
                "42", "--keepcnt", "3", "--hold-ms", "5000", "--name", "rw_ka_test"});
    int c_on = std::stoi(with.expect("connected"));

    Child srv_off({peer_bin(), "server", "--abort-after-ms", "500"});
    int p_off = std::stoi(srv_off.expect("listening"));
    Child without({peer_bin(), "client", "--port", std::to_string(p_off), "--hold-ms", "5000",
                   "--name", "rw_ka_test"});
    int c_off = std::stoi(without.expect("connected"));

    with.expect("result");
    without.expect("result");
    auto events = s.stop();

    auto rst_on = resets_between(events, p_on, c_on);
    auto rst_off = resets_between(events, p_off, c_off);
    const json *on = find_dir(rst_on, "received");
    const json *off = find_dir(rst_off, "received");
    ASSERT_TRUE(on && off) << json(events).dump(2);
    EXPECT_EQ((*on)["keepalive"]["enabled"], true);
    EXPECT_EQ((*on)["keepalive"]["idle_s"], 42);
    EXPECT_EQ((*on)["keepalive"]["source"], "socket");
    EXPECT_EQ((*on)["keepalive"]["probes"], 3);
    EXPECT_EQ((*on)["keepalive"]["interval_s"], sysctl_intvl);

    EXPECT_EQ((*off)["keepalive"]["enabled"], false);
    EXPECT_EQ((*off)["keepalive"]["idle_s"], sysctl_idle);
    EXPECT_EQ((*off)["keepalive"]["interval_s"], sysctl_intvl);
    EXPECT_EQ((*off)["keepalive"]["probes"], sysctl_probes);
    EXPECT_EQ((*off)["keepalive"]["source"], "sysctl");
}

TEST(TraceReset, KeepaliveSysctlComesFromTheSocketsOwnNetns) {
    RW_REQUIRE_BPF();
    const std::string ns = "rwtest_ka_" + std::to_string(getpid());
    sh("ip netns add " + ns + " && ip -n " + ns + " link set lo up && ip netns exec " + ns +
       " sysctl -qw net.ipv4.tcp_keepalive_time=1234 net.ipv4.tcp_keepalive_probes=5");
    struct NsGuard {
        std::string name;
        ~NsGuard() { std::system(("ip netns del " + name + " 2>/dev/null").c_str()); }
    } guard{ns};
    struct stat st {};
    ASSERT_EQ(stat(("/run/netns/" + ns).c_str(), &st), 0);

    Session s({"--events", "reset", "--netns", std::to_string(st.st_ino)});
    Child server(
        {"/usr/bin/ip", "netns", "exec", ns, peer_bin(), "server", "--abort-after-ms", "1000"});
    int sport = std::stoi(server.expect("listening"));
    Child client({"/usr/bin/ip", "netns", "exec", ns, peer_bin(), "client", "--port",
                  std::to_string(sport), "--hold-ms", "5000", "--name", "rw_ns_cli"});
    int cport = std::stoi(client.expect("connected"));
    EXPECT_EQ(client.expect("result"), "errno 104");
    auto events = s.stop();

    // --netns kept only this namespace's resets: exactly the pair.
    auto rst = of_type(events, "tcp_reset");
    ASSERT_EQ(rst.size(), 2u) << json(events).dump(2);
    const json *rx = find_dir(rst, "received");
    ASSERT_TRUE(rx);
    EXPECT_EQ((*rx)["local"]["port"], cport);
    EXPECT_EQ((*rx)["netns"], st.st_ino);
    // `ip netns exec` execs the helper: the pid we started owns the socket.
    EXPECT_EQ((*rx)["process"]["pid"], client.pid());
    EXPECT_EQ((*rx)["keepalive"]["idle_s"], 1234);
    EXPECT_EQ((*rx)["keepalive"]["probes"], 5);
    EXPECT_EQ((*rx)["keepalive"]["source"], "sysctl");
}

TEST(TraceReset, Ipv6LoopbackAddressesAndFamily) {
    RW_REQUIRE_BPF();
    const int sport = free_port();
    Session s({"--events", "reset", "--port", std::to_string(sport)});
    Child server({peer_bin(), "server", "--addr", "::1", "--port", std::to_string(sport),
                  "--abort-after-ms", "300"});
    server.expect("listening");
    Child client({peer_bin(), "client", "--addr", "::1", "--port", std::to_string(sport),
                  "--hold-ms", "5000"});
    int cport = std::stoi(client.expect("connected"));
    client.expect("result");
    auto events = s.stop();
    auto rst = resets_between(events, sport, cport);
    const json *rx = find_dir(rst, "received");
    ASSERT_TRUE(rx);
    EXPECT_EQ((*rx)["family"], "ipv6");
    EXPECT_EQ((*rx)["local"]["addr"], "::1");
    EXPECT_EQ((*rx)["remote"]["addr"], "::1");
    EXPECT_EQ((*rx)["process"]["pid"], client.pid());
}
