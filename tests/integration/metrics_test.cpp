// Privileged: --metrics-listen against real clients: promtool on a real
// scrape, a real Prometheus server counting resets, and clients that are slow,
// hostile or on the wrong path, none of which may stall event processing.
#include <atomic>
#include <thread>

#include "agent_support.hpp"

using namespace rwtest;

namespace {

std::string metrics(int port) {
    HttpReply r = http_get(port, "/metrics");
    EXPECT_EQ(r.status, 200) << r.raw.substr(0, 300);
    return r.body;
}

// Reads session lines until `n` tcp_reset events on `port` have arrived.
bool resets_arrive(Session &s, int port, std::size_t n, std::chrono::milliseconds timeout) {
    std::size_t seen = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (seen < n) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        auto line = s.child().read_line(left);
        if (!line) return false;
        json e = json::parse(*line, nullptr, false);
        if (e.is_object() && e["event"] == "tcp_reset" &&
            (e["local"]["port"] == port || e["remote"]["port"] == port))
            ++seen;
    }
    return true;
}

} // namespace

// N refused connects from a process named `comm` (N resets received by it).
void refused_as(const std::string &comm, int port, int n) {
    Child c({peer_bin(), "refused", std::to_string(port), "--count", std::to_string(n), "--name",
             comm});
    EXPECT_EQ(c.expect("done", 60s), std::to_string(n));
    c.wait();
}

double received_resets(const std::string &text) {
    double n = 0;
    for (auto v : {"keepalive_disabled", "keepalive_too_slow", "not_idle", "no_socket",
                   "local_abort", "unknown"})
        n += sample_value(text, "rstwatch_resets_total",
                          std::string(R"(direction="received",verdict=")") + v + "\"");
    return n;
}

TEST(AgentMetrics, RealScrapePassesPromtoolWithExactCounts) {
    RW_REQUIRE_BPF();
    TempDir dir("metrics");
    const std::string comm = "rw_metric_peer";
    Child server({peer_bin(), "server", "--hold-ms", "30000", "--name", "rw_metric_srv"});
    const int held = std::stoi(server.expect("listening"));
    Child client({peer_bin(), "client", "--port", std::to_string(held), "--hold-ms", "30000",
                  "--name", comm});
    client.expect("connected");
    const int mport = free_port();
    Session s({"--events", "reset", "--comm", comm, "--audit-interval", "1s", "--metrics-listen",
               std::to_string(mport)});
    refused_as(comm, free_port(), 7);

    std::string text;
    ASSERT_TRUE(wait_until(
        [&] {
            text = metrics(mport);
            return received_resets(text) == 7 &&
                   sample_value(text, "rstwatch_audit_connections", "comm=\"" + comm + "\"") == 1;
        },
        15s))
        << text;
    // The audit is filtered like the events (--comm): only the client.
    EXPECT_EQ(
        sample_value(text, "rstwatch_audit_connections_without_keepalive", "comm=\"" + comm + "\""),
        1);
    EXPECT_EQ(sample_value(text, "rstwatch_audit_processes"), 1);
    EXPECT_GE(sample_value(text, "rstwatch_audit_runs_total"), 1);
    EXPECT_NE(text.find("rstwatch_build_info{version="), std::string::npos);
    const std::string file = dir / "scrape.txt";
    write_file(file, text);
    sh("promtool check metrics < " + file); // fails the test on a non-zero exit

    // Only /metrics exists.
    EXPECT_EQ(http_get(mport, "/").status, 404);
    EXPECT_EQ(http_get(mport, "/metrics/x").status, 404);
    EXPECT_EQ(http_get(mport, "/debug/pprof").status, 404);

    auto events = s.stop(SIGTERM);
    std::size_t resets = 0;
    for (auto &e : of_type(events, "tcp_reset"))
        if (e["direction"] == "received") ++resets;
    EXPECT_EQ(resets, 7u);
}

TEST(AgentMetrics, APrometheusServerSeesTheExactResetCount) {
    RW_REQUIRE_BPF();
    TempDir dir("prom");
    const int port = free_port(), mport = free_port();
    Session s({"--events", "reset", "--port", std::to_string(port), "--metrics-listen",
               std::to_string(mport)});
    PrometheusServer prom(dir, mport);
    ASSERT_TRUE(prom.ready(60s)) << prom.log();
    // Scraped at least once before the resets, so the increase is visible.
    ASSERT_TRUE(wait_until([&] { return prom.query("up{job=\"rstwatch\"}") == 1.0; }, 60s))
        << prom.log();

    const int n = 25;
    refused_burst(port, n); // n resets sent (no socket) and n received
    std::optional<double> total;
    ASSERT_TRUE(wait_until(
        [&] {
            total = prom.query("sum(rstwatch_resets_total)");
            return total && *total >= 2 * n;
        },
        60s))
        << prom.log();
    EXPECT_EQ(*total, 2 * n);
    EXPECT_EQ(prom.query(R"(rstwatch_resets_total{direction="sent",verdict="no_socket"})"), n);
    EXPECT_EQ(prom.query(R"(sum(rstwatch_resets_total{direction="received"}))"), n);
    EXPECT_EQ(prom.query(R"(rstwatch_events_emitted_total{event="tcp_reset"})"), 2 * n);
    s.stop(SIGTERM);
}

TEST(AgentMetrics, SlowAndHostileClientsNeverStallEvents) {
    RW_REQUIRE_BPF();
    const int port = free_port(), mport = free_port();
    Session s({"--events", "reset", "--port", std::to_string(port), "--metrics-listen",
               std::to_string(mport)});

    // Headers far over the limit: an error status, or the connection cut.
    HttpReply huge = http_request(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                             std::string(200 * 1024, 'a') + "\r\n\r\n");
    EXPECT_NE(huge.status, 200) << huge.raw.substr(0, 200);
    EXPECT_TRUE(huge.status == 0 || huge.status >= 400) << huge.raw.substr(0, 200);
    // Many small header lines add up to the same limit.
    std::string many = "GET /metrics HTTP/1.1\r\n";
    for (int i = 0; i < 4000; ++i)
        many += "X-" + std::to_string(i) + ": v\r\n";
    HttpReply hr = http_request(mport, many + "\r\n");
    EXPECT_NE(hr.status, 200);

    // Slow clients: each sends half a request and then one byte every 200 ms,
    // more of them than there are workers and queue slots.
    std::vector<std::unique_ptr<RawClient>> slow;
    for (int i = 0; i < 14; ++i) {
        slow.push_back(std::make_unique<RawClient>(mport));
        slow.back()->send("GET /metrics HTTP/1.1\r\nX-Slow: ");
    }
    std::atomic<bool> trickle{true};
    std::thread dripper([&] {
        for (int i = 0; i < 100 && trickle; ++i) {
            for (auto &c : slow)
                c->send("a");
            std::this_thread::sleep_for(200ms);
        }
    });
    // While every worker is held, events still flow.
    refused_burst(port, 10);
    EXPECT_TRUE(resets_arrive(s, port, 20, 10s));
    // The deadline cuts the slow ones (the server closes: reads see EOF)...
    std::size_t cut = 0;
    for (auto &c : slow) {
        std::string got;
        if (c->read_until_closed(20s, got)) {
            EXPECT_TRUE(got.empty() || got.rfind("HTTP/1.1 503", 0) == 0) << got.substr(0, 100);
            ++cut;
        }
    }
    trickle = false;
    dripper.join();
    EXPECT_EQ(cut, slow.size());
    // ...and the endpoint answers again, counting what it refused.
    std::string text = metrics(mport);
    EXPECT_GE(sample_value(text, "rstwatch_metrics_rejected_total", R"(reason="timeout")"), 1);
    EXPECT_GE(sample_value(text, "rstwatch_metrics_rejected_total", R"(reason="busy")"), 1);
    EXPECT_GE(sample_value(text, "rstwatch_metrics_rejected_total", R"(reason="too_large")"), 1);
    EXPECT_EQ(sample_value(text, "rstwatch_events_emitted_total", R"(event="tcp_reset")"), 20);

    // SIGTERM with a slow client connected: the HTTP threads stop, exit 0,
    // the summary is written.
    RawClient lingering(mport);
    lingering.send("GET /metrics HTTP/1.1\r\n");
    auto events = s.stop(SIGTERM);
    ASSERT_EQ(of_type(events, "session_summary").size(), 1u);
    EXPECT_EQ(of_type(events, "session_summary")[0]["emitted"], 20);
}
