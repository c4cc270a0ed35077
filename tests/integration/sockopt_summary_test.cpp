// Privileged: the cgroup/setsockopt hook records, per process, which keepalive
// options it set; the end-of-session process_summary reports them. The same
// check runs on older kernels in the kernel matrix (scripts/vm/check.py).
#include "harness.hpp"

using namespace rwtest;

TEST(SockoptSummary, KeepaliveOptionsSetPerProcess) {
    RW_REQUIRE_BPF();
    Session s({"--events", "reset,summary"});
    ASSERT_EQ(s.start_event()["setsockopt_hook"], "cgroup");

    Child server({peer_bin(), "server", "--abort-after-ms", "300"});
    int sport = std::stoi(server.expect("listening"));
    Child with({peer_bin(), "client", "--port", std::to_string(sport), "--keepalive", "--keepidle",
                "42", "--keepcnt", "3", "--hold-ms", "5000", "--name", "rw_so_on"});
    with.expect("connected");
    EXPECT_EQ(with.expect("result"), "errno 104");
    with.wait();
    server.wait();
    auto events = s.stop();

    const auto summaries = of_type(events, "process_summary");
    const json *mine = nullptr;
    for (auto &e : summaries)
        if (e["process"]["pid"] == with.pid()) mine = &e;
    ASSERT_TRUE(mine) << json(events).dump(2);
    EXPECT_EQ((*mine)["process"]["comm"], "rw_so_on");
    EXPECT_EQ((*mine)["keepalive_options_set"],
              json::array({"SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPCNT"}));
    EXPECT_EQ((*mine)["resets_received"], 1);
}
