// Privileged: signals and teardown. A session stopped by SIGINT or SIGTERM in
// the middle of a reset flood writes its final session_summary, flushes every
// line it counted, and releases every BPF program, link, map and BTF object it
// held; after SIGKILL the kernel releases them all the same, and nothing is
// pinned. Objects are compared by kernel id (from /proc/PID/fdinfo of THIS
// rstwatch, checked against bpftool before, during and after), so other
// rstwatch instances on the host cannot confuse the test. Two sessions at once
// are independent: both see the same events, and stopping one leaves the other
// untouched.
#include <csignal>

#include "bpf_objects.hpp"
#include "harness.hpp"

using namespace rwtest;

namespace {

// What the session holds while it runs: fresh ids (none existed before it),
// all alive, all ours by name, nothing pinned.
BpfIds held_while_running(pid_t pid, const BpfIds &before) {
    BpfIds held = bpf_ids_held_by(pid);
    EXPECT_FALSE(held.progs.empty());
    EXPECT_FALSE(held.maps.empty());
    EXPECT_FALSE(held.links.empty());
    for (unsigned id : held.progs)
        EXPECT_FALSE(before.progs.count(id)) << "prog " << id << " existed before the session";
    for (unsigned id : held.links)
        EXPECT_FALSE(before.links.count(id)) << "link " << id << " existed before the session";
    BpfIds alive = bpf_ids_alive(held);
    EXPECT_EQ(alive.progs, held.progs);
    EXPECT_EQ(alive.maps, held.maps);
    EXPECT_EQ(alive.links, held.links);
    auto names = bpf_prog_names(held);
    for (const auto &n : names)
        EXPECT_EQ(n.rfind("rw_", 0), 0u) << n;
    for (const char *want : {"rw_tcp_send_reset", "rw_tcp_receive_reset", "rw_inet_sock_set_state",
                             "rw_iter_sockets", "rw_cgroup_setsockopt"})
        EXPECT_TRUE(names.count(want)) << want << " not loaded";
    auto maps = bpf_maps_of(pid);
    for (const char *want : {"rw_events", "rw_socks", "rw_counters"})
        EXPECT_TRUE(maps.count(want)) << want << " not held";
    EXPECT_TRUE(pinned_paths_of(held).empty());
    return held;
}

std::vector<json> parse_all(const std::vector<std::string> &lines) {
    std::vector<json> out;
    for (const auto &l : lines) {
        json j = json::parse(l, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not whole JSON: " << l;
        if (!j.is_discarded()) out.push_back(std::move(j));
    }
    return out;
}

std::size_t resets_on(const std::vector<json> &events, int port) {
    std::size_t n = 0;
    for (const auto &e : of_type(events, "tcp_reset"))
        if (e["local"]["port"] == port || e["remote"]["port"] == port) ++n;
    return n;
}

} // namespace

class SignalTeardown : public ::testing::TestWithParam<int> {};

TEST_P(SignalTeardown, DuringAFloodTheSummaryIsWrittenAndEveryObjectReleased) {
    RW_REQUIRE_BPF();
    const int sig = GetParam();
    const int port = free_port();
    const BpfIds before = bpf_ids_live();
    Session s({"--events", "reset", "--port", std::to_string(port)});
    const BpfIds held = held_while_running(s.pid(), before);

    // A flood (bounded: 200000 connects, killed when done with), and the
    // signal while events are pouring in.
    Child flood(
        {peer_bin(), "refused", std::to_string(port), "--count", "200000", "--name", "rw_flood"});
    flood.expect("local_port");
    std::vector<std::string> lines;
    while (lines.size() < 20000) {
        auto l = s.child().read_line(20s);
        ASSERT_TRUE(l) << "the flood produced no events; stderr: " << s.child().stderr_text();
        lines.push_back(*l);
    }
    s.child().signal(sig);
    auto rest = s.child().read_all(30s);
    lines.insert(lines.end(), rest.begin(), rest.end());
    EXPECT_EQ(s.child().wait(30s), 0) << s.child().stderr_text();
    flood.signal(SIGKILL);
    flood.wait();

    // Output: whole lines, the summary last, and every counted event present.
    auto events = parse_all(lines);
    ASSERT_FALSE(events.empty());
    const json &sum = events.back();
    ASSERT_EQ(sum["event"], "session_summary") << sum.dump();
    EXPECT_EQ(sum["end_reason"], "signal");
    EXPECT_EQ(sum["write_dropped"], 0);
    EXPECT_EQ(sum["malformed"], 0);
    EXPECT_EQ(sum["emitted"].get<std::size_t>(), of_type(events, "tcp_reset").size());
    EXPECT_GE(resets_on(events, port), 20000u);
    std::printf("[ info ] %s in a flood: %zu events written, %llu lost to a full ring buffer\n",
                strsignal(sig), of_type(events, "tcp_reset").size(),
                static_cast<unsigned long long>(sum["lost"].get<std::uint64_t>()));

    // Every program, link, map and BTF object it held is gone, nothing pinned.
    BpfIds left = wait_until_released(held);
    EXPECT_TRUE(left.empty()) << "still alive after exit: " << left;
    EXPECT_TRUE(pinned_paths_of(held).empty());
}

INSTANTIATE_TEST_SUITE_P(Signals, SignalTeardown, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto &info) {
                             return std::string(info.param == SIGINT ? "SIGINT" : "SIGTERM");
                         });

TEST(Teardown, SigkillLeavesNothingBehind) {
    RW_REQUIRE_BPF();
    const int port = free_port();
    const BpfIds before = bpf_ids_live();
    Session s({"--events", "reset", "--port", std::to_string(port)});
    const BpfIds held = held_while_running(s.pid(), before);
    Child flood({peer_bin(), "refused", std::to_string(port), "--count", "200000"});
    flood.expect("local_port");
    ASSERT_TRUE(s.child().read_line(20s)); // events are flowing
    s.child().signal(SIGKILL);
    EXPECT_EQ(s.child().wait(), 128 + SIGKILL);
    flood.signal(SIGKILL);
    flood.wait();
    // No destructor ran: the kernel drops everything with the last fd.
    BpfIds left = wait_until_released(held);
    EXPECT_TRUE(left.empty()) << "still alive after SIGKILL: " << left;
    EXPECT_TRUE(pinned_paths_of(held).empty());
}

TEST(Teardown, TwoSessionsAreIndependent) {
    RW_REQUIRE_BPF();
    const int port = free_port();
    const BpfIds before = bpf_ids_live();
    Session a({"--events", "reset", "--port", std::to_string(port)});
    Session b({"--events", "reset", "--port", std::to_string(port)});
    const BpfIds ids_a = held_while_running(a.pid(), before);
    const BpfIds ids_b = held_while_running(b.pid(), before);
    for (unsigned id : ids_a.progs)
        EXPECT_FALSE(ids_b.progs.count(id));
    for (unsigned id : ids_a.maps)
        EXPECT_FALSE(ids_b.maps.count(id));
    for (unsigned id : ids_a.links)
        EXPECT_FALSE(ids_b.links.count(id));

    refused_burst(port, 5); // both see all of it
    sleep(1);
    auto events_a = a.stop(SIGTERM);
    EXPECT_TRUE(wait_until_released(ids_a).empty());
    // Stopping A took nothing of B's away, and B keeps seeing everything.
    BpfIds alive_b = bpf_ids_alive(ids_b);
    EXPECT_EQ(alive_b.progs, ids_b.progs);
    EXPECT_EQ(alive_b.maps, ids_b.maps);
    EXPECT_EQ(alive_b.links, ids_b.links);
    refused_burst(port, 7);
    sleep(1);
    auto events_b = b.stop(SIGINT);
    EXPECT_TRUE(wait_until_released(ids_b).empty());

    // One sent and one received reset per refused connect (6.12+ kernels).
    EXPECT_EQ(resets_on(events_a, port), 10u);
    EXPECT_EQ(resets_on(events_b, port), 24u);
}

TEST(MapHygiene, ClosedListenerLeavesNoEntry) {
    RW_REQUIRE_BPF();
    // Found by bench/soak.sh: the port is released before LISTEN -> CLOSE is
    // traced, so the delete used port 0 and every closed listener leaked.
    Session s({"--events", "reset", "--port", "1"});
    const unsigned id = bpf_maps_of(s.pid()).at("rw_listeners");
    auto has_port = [&](int port) {
        json d = json::parse(sh("bpftool map dump id " + std::to_string(id) + " -j"));
        for (auto &e : d)
            if (e["formatted"]["key"]["port"] == port) return true;
        return false;
    };
    Child load({helper_bin("rw_load"), "--seconds", "2", "--rate", "5"});
    const int port = std::stoi(load.expect("listening"));
    load.expect("tick");
    EXPECT_TRUE(has_port(port)) << "the listener was never recorded";
    load.expect("done", 20s);
    EXPECT_EQ(load.wait(), 0);
    EXPECT_FALSE(has_port(port)) << "rw_listeners still has closed listener port " << port;
    s.stop();
}
