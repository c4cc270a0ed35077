// Privileged: keepalive_set, connection_closed, tcp_timeout, process_summary,
// lost accounting, --count/--duration, and bounded kernel maps under churn.
#include <sstream>
#include <unistd.h>

#include "harness.hpp"

using namespace rwtest;

namespace {

std::vector<json> of_pid(const std::vector<json> &events, const std::string &type, pid_t pid) {
    std::vector<json> out;
    for (auto &e : of_type(events, type))
        if (e["process"].is_object() && e["process"]["pid"] == pid) out.push_back(e);
    return out;
}

const json *summary_of(const std::vector<json> &events, pid_t pid) {
    static std::vector<json> keep;
    keep = of_pid(events, "process_summary", pid);
    return keep.empty() ? nullptr : &keep.front();
}

} // namespace

TEST(TraceEvents, KeepaliveSetShowsExactOptionsValuesAndRealResults) {
    RW_REQUIRE_BPF();
    Session s({"--events", "keepalive"});
    EXPECT_EQ(s.start_event()["setsockopt_hook"], "syscall");
    Child server({peer_bin(), "server", "--hold-ms", "3000"});
    int sport = std::stoi(server.expect("listening"));
    Child peer({peer_bin(), "sockopts", "--port", std::to_string(sport), "--hold-ms", "200",
                "--name", "rw_sockopts"});
    int cport = std::stoi(peer.expect("connected"));
    struct Call {
        std::string option;
        int level, value, result, fd;
    };
    std::vector<Call> calls;
    for (int i = 0; i < 8; ++i) {
        std::istringstream in(peer.expect("sockopt"));
        Call c;
        in >> c.option >> c.level >> c.value >> c.result >> c.fd;
        calls.push_back(c);
    }
    peer.wait();
    auto events = of_pid(s.stop(), "keepalive_set", peer.pid());
    ASSERT_EQ(events.size(), calls.size()) << json(events).dump(2);
    for (std::size_t i = 0; i < calls.size(); ++i) {
        const json &e = events[i];
        SCOPED_TRACE(e.dump());
        EXPECT_EQ(e["option"], calls[i].option);
        EXPECT_EQ(e["value"], calls[i].value);
        EXPECT_EQ(e["result"], calls[i].result);
        EXPECT_EQ(e["fd"], calls[i].fd);
        EXPECT_EQ(e["process"]["comm"], "rw_sockopts");
        EXPECT_EQ(e["level"], calls[i].level == 1 ? "SOL_SOCKET" : "IPPROTO_TCP");
        if (calls[i].result == -9) { // EBADF: no socket behind the fd
            EXPECT_TRUE(e["local"].is_null());
            EXPECT_TRUE(e["netns"].is_null());
        } else {
            EXPECT_EQ(e["local"]["port"], cport);
            EXPECT_EQ(e["remote"]["port"], sport);
        }
    }
    // The helper's fixed sequence: the failing and misdirected calls.
    EXPECT_EQ(events[5]["result"], -22); // TCP_KEEPIDLE 0: EINVAL
    EXPECT_EQ(events[6]["result"], -9);  // bad fd: EBADF
    EXPECT_EQ(events[7]["misdirected"], true);
    EXPECT_EQ(events[7]["result"], 0);
    EXPECT_EQ(events[0]["misdirected"], false);
}

TEST(TraceEvents, ConnectionClosedCarriesDurationAndKeepaliveHistory) {
    RW_REQUIRE_BPF();
    const int sport = free_port();
    Session s({"--events", "connection", "--port", std::to_string(sport)});
    Child server({peer_bin(), "server", "--port", std::to_string(sport), "--hold-ms", "1500"});
    server.expect("listening");
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--keepalive",
                  "--keepidle", "11", "--hold-ms", "5000", "--name", "rw_closer"});
    int cport = std::stoi(client.expect("connected"));
    EXPECT_EQ(client.expect("result"), "eof"); // the server closed after 1.5 s
    client.wait();
    server.wait();
    auto events = s.stop();

    const json *mine = nullptr, *theirs = nullptr;
    auto closed = of_type(events, "connection_closed");
    for (auto &e : closed) {
        if (e["local"]["port"] == cport && e["remote"]["port"] == sport) mine = &e;
        if (e["local"]["port"] == sport && e["remote"]["port"] == cport) theirs = &e;
    }
    ASSERT_TRUE(mine && theirs) << json(closed).dump(2);
    EXPECT_EQ((*mine)["process"]["pid"], client.pid());
    EXPECT_EQ((*mine)["keepalive_ever_enabled"], true);
    EXPECT_EQ((*mine)["keepalive_options_set"], (json{"SO_KEEPALIVE", "TCP_KEEPIDLE"}));
    EXPECT_EQ((*mine)["keepalive"]["idle_s"], 11);
    EXPECT_NEAR((*mine)["duration_ms"].get<double>(), 1500, 400);
    EXPECT_EQ((*mine)["error"], 0);
    EXPECT_EQ((*theirs)["process"]["pid"], server.pid());
    EXPECT_EQ((*theirs)["owner_source"], "listener");
    EXPECT_EQ((*theirs)["keepalive_ever_enabled"], false);
    EXPECT_EQ((*theirs)["keepalive_options_set"], json::array());
}

TEST(TraceEvents, ProcessSummaryNamesTheProcessThatNeverSetKeepalive) {
    RW_REQUIRE_BPF();
    Session s({"--events", "reset,summary"});
    Child server({peer_bin(), "server", "--hold-ms", "4000"});
    int sport = std::stoi(server.expect("listening"));
    Child yes({peer_bin(), "client", "--port", std::to_string(sport), "--keepalive", "--hold-ms",
               "1500", "--name", "rw_ka_yes"});
    yes.expect("connected");
    Child server2({peer_bin(), "server", "--hold-ms", "4000"});
    int sport2 = std::stoi(server2.expect("listening"));
    Child no({peer_bin(), "client", "--port", std::to_string(sport2), "--hold-ms", "1500", "--name",
              "rw_ka_no"});
    no.expect("connected");
    yes.wait();
    no.wait();
    auto events = s.stop();

    const json *y = summary_of(events, yes.pid());
    ASSERT_TRUE(y) << json(of_type(events, "process_summary")).dump(2);
    EXPECT_EQ((*y)["process"]["comm"], "rw_ka_yes");
    EXPECT_EQ((*y)["connections"], 1);
    EXPECT_EQ((*y)["without_keepalive"], 0);
    EXPECT_EQ((*y)["keepalive_options_set"], json{"SO_KEEPALIVE"});
    json y_copy = *y;

    const json *n = summary_of(events, no.pid());
    ASSERT_TRUE(n);
    EXPECT_EQ((*n)["process"]["comm"], "rw_ka_no");
    EXPECT_EQ((*n)["connections"], 1);
    EXPECT_EQ((*n)["without_keepalive"], 1);
    EXPECT_EQ((*n)["keepalive_options_set"], json::array());
    (void)y_copy;

    // Worst first: rw_ka_no comes before rw_ka_yes.
    auto all = of_type(events, "process_summary");
    std::size_t pos_no = all.size(), pos_yes = all.size();
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (all[i]["process"]["pid"] == no.pid()) pos_no = i;
        if (all[i]["process"]["pid"] == yes.pid()) pos_yes = i;
    }
    EXPECT_LT(pos_no, pos_yes);
    EXPECT_EQ(of_type(events, "session_summary").size(), 1u);
}

TEST(TraceEvents, ConnectionsStillClosingAtTheEndCountForTheirOwner) {
    // The client closes with unsent data queued, so its socket stays in
    // FIN_WAIT1 without an fd when the session ends: the kernel has not
    // counted it (no CLOSE yet) and no process holds it.
    RW_REQUIRE_BPF();
    Session s({"--events", "reset,summary"});
    Child server({peer_bin(), "server", "--hold-ms", "4000"});
    int sport = std::stoi(server.expect("listening"));
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "200",
                  "--fill", "--name", "rw_closing"});
    client.expect("connected");
    EXPECT_GT(std::stol(client.expect("filled")), 0);
    client.wait();
    auto events = s.stop();

    const json *c = summary_of(events, client.pid());
    ASSERT_TRUE(c) << json(of_type(events, "process_summary")).dump(2);
    EXPECT_EQ((*c)["process"]["comm"], "rw_closing");
    EXPECT_EQ((*c)["connections"], 1);
    EXPECT_EQ((*c)["open_connections"], 0);
    EXPECT_EQ((*c)["without_keepalive"], 1);
    const json *srv = summary_of(events, server.pid());
    ASSERT_TRUE(srv);
    EXPECT_EQ((*srv)["open_connections"], 1);
}

TEST(TraceEvents, StillOpenConnectionsCountInTheSummary) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--hold-ms", "6000"});
    int sport = std::stoi(server.expect("listening"));
    Child idle({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "6000",
                "--name", "rw_open_idle"});
    idle.expect("connected");
    Session s({"--events", "summary"});
    auto events = s.stop();
    const json *p = summary_of(events, idle.pid());
    ASSERT_TRUE(p) << json(of_type(events, "process_summary")).dump(2);
    EXPECT_EQ((*p)["connections"], 1);
    EXPECT_EQ((*p)["open_connections"], 1);
    EXPECT_EQ((*p)["without_keepalive"], 1);
}

TEST(TraceEvents, CountAndDurationStopCleanly) {
    RW_REQUIRE_BPF();
    {
        int port = free_port();
        Session s({"--events", "reset", "--count", "1", "--port", std::to_string(port)});
        Child burst({peer_bin(), "refused", std::to_string(port), "--count", "5"});
        burst.expect("done");
        auto lines = s.child().read_all(10s);
        EXPECT_EQ(s.child().wait(10s), 0);
        std::vector<json> events;
        for (auto &l : lines)
            events.push_back(json::parse(l));
        EXPECT_EQ(of_type(events, "tcp_reset").size(), 1u);
        auto sum = of_type(events, "session_summary");
        ASSERT_EQ(sum.size(), 1u);
        EXPECT_EQ(sum[0]["end_reason"], "count");
        EXPECT_EQ(sum[0]["emitted"], 1);
    }
    {
        Session s({"--duration", "700ms"});
        auto lines = s.child().read_all(10s);
        EXPECT_EQ(s.child().wait(10s), 0);
        ASSERT_FALSE(lines.empty());
        json last = json::parse(lines.back());
        EXPECT_EQ(last["event"], "session_summary");
        EXPECT_EQ(last["end_reason"], "duration");
        EXPECT_NEAR(last["duration_ms"].get<double>(), 700, 300);
    }
}

TEST(TraceEvents, EmittedPlusLostEqualsGeneratedWithATinyRingBuffer) {
    RW_REQUIRE_BPF();
    int port = free_port();
    // One page of ring buffer holds ~25 resets; a burst of 4000 refused
    // connects makes 8000 (a sent RST for no socket + the received one).
    const int connects = 4000;
    Session s({"--events", "reset", "--ringbuf-size", "4K", "--port", std::to_string(port)});
    Child burst({peer_bin(), "refused", std::to_string(port), "--count", std::to_string(connects)});
    EXPECT_EQ(burst.expect("done", 60s), std::to_string(connects));
    burst.wait();
    sleep(2); // let at least one periodic `lost` report happen
    auto events = s.stop();

    const auto resets = of_type(events, "tcp_reset");
    auto sum = of_type(events, "session_summary");
    ASSERT_EQ(sum.size(), 1u);
    const std::uint64_t lost = sum[0]["lost"];
    EXPECT_EQ(resets.size() + lost, std::size_t(2 * connects))
        << "emitted " << resets.size() << " lost " << lost;
    EXPECT_EQ(sum[0]["emitted"], resets.size());
    EXPECT_GT(lost, 0u) << "the burst did not overflow the ring buffer; the test proves nothing";
    auto lost_events = of_type(events, "lost");
    ASSERT_FALSE(lost_events.empty());
    EXPECT_EQ(lost_events.back()["total"], lost);
    std::uint64_t sum_lost = 0;
    for (auto &l : lost_events)
        sum_lost += l["lost"].get<std::uint64_t>();
    EXPECT_EQ(sum_lost, lost);
}

TEST(TraceEvents, KernelMapsReturnToLiveConnectionsAfterChurn) {
    RW_REQUIRE_BPF();
    Session s({"--events", "summary"});
    auto maps = bpf_maps_of(s.pid());
    ASSERT_TRUE(maps.count("rw_socks") && maps.count("rw_tuples") && maps.count("rw_listeners"));

    Child churn({peer_bin(), "churn", "--count", "200000"});
    const int port = std::stoi(churn.expect("listening"));
    // While it runs, its sockets are tracked...
    usleep(300000);
    auto owned_by_churn = [&] {
        std::size_t n = 0;
        for (auto &e : bpf_map_dump(maps["rw_socks"]))
            if (e["value"]["owner"]["pid"] == churn.pid()) ++n;
        return n;
    };
    auto tuples_on_port = [&] {
        std::size_t n = 0;
        for (auto &e : bpf_map_dump(maps["rw_tuples"]))
            if (e["key"]["local_port"] == port || e["key"]["remote_port"] == port) ++n;
        return n;
    };
    EXPECT_EQ(churn.expect("done", 120s), "200000");
    churn.wait();
    // ...and after 400,000 sockets came and went, none of them is left: the
    // entries are deleted at close, the maps hold live connections only.
    EXPECT_EQ(owned_by_churn(), 0u);
    EXPECT_EQ(tuples_on_port(), 0u);
    for (auto &e : bpf_map_dump(maps["rw_listeners"]))
        EXPECT_NE(e["key"]["port"], port);
    auto events = s.stop();
    const json *p = summary_of(events, churn.pid());
    ASSERT_TRUE(p);
    EXPECT_EQ((*p)["connections"], 400000); // both ends of each connection
    EXPECT_EQ((*p)["resets_sent"], 200000);
    EXPECT_EQ((*p)["open_connections"], 0);
}

TEST(TraceEvents, TimeoutWhenThePeerSilentlyStopsAnswering) {
    RW_REQUIRE_BPF();
    NetNs ns("timeout");
    // Few retries so the kernel gives up in about a second.
    ns.exec("sysctl -qw net.ipv4.tcp_retries2=3");
    Session s({"--events", "timeout", "--netns", std::to_string(ns.inode())});
    Child server(ns.wrap({peer_bin(), "server", "--hold-ms", "30000"}));
    int sport = std::stoi(server.expect("listening"));
    Child client(
        ns.wrap({peer_bin(), "client", "--port", std::to_string(sport), "--wait-line", "--idle-ms",
                 "1500", "--write", "--hold-ms", "30000", "--name", "rw_timeout"}),
        true);
    const std::string connected = client.expect("connected");
    const int cport = int(field(connected, 0));
    // Drop everything towards the server from now on: a silent middlebox.
    ns.exec("nft add table inet rwt && nft add chain inet rwt in { type filter hook input priority "
            "0 \\; } && "
            "nft add rule inet rwt in tcp dport " +
            std::to_string(sport) + " drop");
    client.write_stdin("go\n");
    // The connection was idle from the handshake to the write (helper's clock).
    const double idle = double(field(client.expect("wrote"), 0) - field(connected, 1));
    EXPECT_EQ(client.expect("result", 40s), "errno 110"); // ETIMEDOUT
    auto events = s.stop();
    auto t = of_type(events, "tcp_timeout");
    ASSERT_EQ(t.size(), 1u) << json(events).dump(2);
    EXPECT_EQ(t[0]["process"]["pid"], client.pid());
    EXPECT_EQ(t[0]["process"]["comm"], "rw_timeout");
    EXPECT_EQ(t[0]["local"]["port"], cport);
    EXPECT_EQ(t[0]["cause"], "retransmit");
    EXPECT_EQ(t[0]["error"], -110);
    EXPECT_NEAR(t[0]["idle_ms"].get<double>(), idle, 300);
    EXPECT_GT(t[0]["unanswered_ms"].get<int>(), 500);
    EXPECT_GE(t[0]["retransmits"].get<int>(), 3);
    EXPECT_EQ(t[0]["keepalive"]["enabled"], false);
}
