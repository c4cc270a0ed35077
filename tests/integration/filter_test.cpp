// Privileged: every filter, with two connections of which only one may pass.
#include "harness.hpp"

using namespace rwtest;

namespace {

// Two independent pairs; each server aborts its connection after 1.2 s of idle.
struct TwoPairs {
    int sport[2] = {0, 0}, cport[2] = {0, 0};
    pid_t server[2] = {0, 0}, client[2] = {0, 0};
    std::vector<std::unique_ptr<Child>> procs;

    void run(const TestCgroup *cg_for_client0 = nullptr) {
        for (int i = 0; i < 2; ++i) {
            auto s = std::make_unique<Child>(
                std::vector<std::string>{peer_bin(), "server", "--abort-after-ms", "1200"});
            sport[i] = std::stoi(s->expect("listening"));
            server[i] = s->pid();
            std::vector<std::string> argv{
                peer_bin(),  "client", "--port", std::to_string(sport[i]),
                "--hold-ms", "5000",   "--name", i == 0 ? "rw_filter_a" : "rw_filter_b"};
            if (i == 0 && cg_for_client0) argv = cg_for_client0->wrap(argv);
            auto c = std::make_unique<Child>(argv);
            cport[i] = std::stoi(c->expect("connected"));
            client[i] = c->pid();
            procs.push_back(std::move(s));
            procs.push_back(std::move(c));
        }
        for (auto &p : procs)
            p->wait();
    }

    // Resets of pair i (either direction).
    std::size_t resets_of(const std::vector<json> &events, int i) const {
        std::size_t n = 0;
        for (auto &e : of_type(events, "tcp_reset")) {
            int l = e["local"]["port"], r = e["remote"]["port"];
            if ((l == sport[i] && r == cport[i]) || (l == cport[i] && r == sport[i])) ++n;
        }
        return n;
    }
};

json summary(const std::vector<json> &events) {
    auto s = of_type(events, "session_summary");
    return s.empty() ? json() : s[0];
}

} // namespace

TEST(Filter, CommKeepsOnlyThatProcesssSockets) {
    RW_REQUIRE_BPF();
    Session s({"--events", "reset", "--comm", "rw_filter_a"});
    TwoPairs p;
    p.run();
    auto events = s.stop();
    // Only the client's received reset: the server's sent reset has another owner.
    EXPECT_EQ(p.resets_of(events, 0), 1u);
    EXPECT_EQ(p.resets_of(events, 1), 0u);
    for (auto &e : of_type(events, "tcp_reset"))
        EXPECT_EQ(e["process"]["comm"], "rw_filter_a");
    EXPECT_GE(summary(events)["filtered_kernel"].get<int>(), 3);
}

TEST(Filter, PidOfAProcessStartedBeforeTheSession) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--abort-after-ms", "2500"});
    int sport = std::stoi(server.expect("listening"));
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "6000"});
    client.expect("connected");
    Session s({"--events", "reset", "--pid", std::to_string(client.pid())});
    client.expect("result");
    auto events = s.stop();
    auto rst = of_type(events, "tcp_reset");
    ASSERT_EQ(rst.size(), 1u) << json(rst).dump(2);
    EXPECT_EQ(rst[0]["process"]["pid"], client.pid());
    EXPECT_EQ(rst[0]["direction"], "received");
}

TEST(Filter, PortMatchesEitherSide) {
    RW_REQUIRE_BPF();
    TwoPairs p;
    // The server port is only known once it listens: filter on a fixed one.
    Child server(
        {peer_bin(), "server", "--abort-after-ms", "800", "--port", std::to_string(free_port())});
    int sport = std::stoi(server.expect("listening"));
    Session s({"--events", "reset", "--port", std::to_string(sport)});
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "5000"});
    client.expect("connected");
    client.expect("result");
    p.run(); // other traffic that must not pass
    auto events = s.stop();
    auto rst = of_type(events, "tcp_reset");
    ASSERT_EQ(rst.size(), 2u) << json(rst).dump(2);
    for (auto &e : rst)
        EXPECT_TRUE(e["local"]["port"] == sport || e["remote"]["port"] == sport);
}

TEST(Filter, CgroupKeepsSocketsCreatedInsideIt) {
    RW_REQUIRE_BPF();
    TestCgroup cg("filter");
    Session s({"--events", "reset", "--cgroup", cg.relative()});
    TwoPairs p;
    p.run(&cg);
    auto events = s.stop();
    EXPECT_EQ(p.resets_of(events, 0), 1u); // the client's socket was created in the cgroup
    EXPECT_EQ(p.resets_of(events, 1), 0u);
    for (auto &e : of_type(events, "tcp_reset")) {
        EXPECT_EQ(e["process"]["pid"], p.client[0]);
        EXPECT_EQ(e["cgroup"], cg.relative());
    }
}

TEST(Filter, MinIdleDropsShortIdleResets) {
    RW_REQUIRE_BPF();
    {
        Session s({"--events", "reset", "--min-idle", "10s"});
        TwoPairs p;
        p.run();
        auto events = s.stop();
        EXPECT_EQ(p.resets_of(events, 0) + p.resets_of(events, 1), 0u);
    }
    {
        Session s({"--events", "reset", "--min-idle", "1s"});
        TwoPairs p;
        p.run();
        auto events = s.stop();
        EXPECT_EQ(p.resets_of(events, 0), 2u);
        EXPECT_EQ(p.resets_of(events, 1), 2u);
    }
}

TEST(Filter, VerdictIsDecidedInUserspace) {
    RW_REQUIRE_BPF();
    Session s({"--events", "reset", "--verdict", "local_abort"});
    TwoPairs p;
    p.run();
    auto events = s.stop();
    EXPECT_EQ(p.resets_of(events, 0), 1u);
    EXPECT_EQ(p.resets_of(events, 1), 1u);
    for (auto &e : of_type(events, "tcp_reset"))
        EXPECT_EQ(e["verdict"], "local_abort");
    EXPECT_GE(summary(events)["filtered_user"].get<int>(), 2);
}
