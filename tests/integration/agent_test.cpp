// Privileged: `rstwatch trace` as a host agent: periodic audits in the event
// stream, the output rate limit, and SIGHUP reloading --config.
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "agent_support.hpp"

using namespace rwtest;

namespace {

// BPF programs the process holds (fdinfo "prog_id"), to show audits reuse the
// programs loaded at start instead of loading their own.
std::size_t bpf_programs_of(pid_t pid) {
    std::size_t n = 0;
    for (const auto &e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fdinfo")) {
        std::ifstream in(e.path());
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("prog_id:", 0) == 0) ++n;
    }
    return n;
}

// Reads the session's lines until `pred` holds for one (bounded); every line
// read is appended to `seen`.
bool read_until(Session &s, std::vector<json> &seen, const std::function<bool(const json &)> &pred,
                std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        auto line = s.child().read_line(left);
        if (!line) return false;
        json j = json::parse(*line, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << *line;
        seen.push_back(j);
        if (pred(j)) return true;
    }
}

std::uint64_t sum_lost(const std::vector<json> &events, const std::string &reason,
                       const std::string &by_event = "") {
    std::uint64_t n = 0;
    for (auto &e : of_type(events, "lost"))
        if (e["reason"] == reason)
            n += by_event.empty() ? e["lost"].get<std::uint64_t>()
                                  : e["by_event"][by_event].get<std::uint64_t>();
    return n;
}

std::size_t resets_on_port(const std::vector<json> &events, int port) {
    std::size_t n = 0;
    for (auto &e : of_type(events, "tcp_reset"))
        if (e["local"]["port"] == port || e["remote"]["port"] == port) ++n;
    return n;
}

} // namespace

TEST(AgentAudit, RecordsAtStartAndEveryIntervalFromTheLoadedPrograms) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--hold-ms", "30000", "--name", "rw_agent_srv"});
    const int port = std::stoi(server.expect("listening"));
    Child client({peer_bin(), "client", "--port", std::to_string(port), "--hold-ms", "30000",
                  "--name", "rw_agent_cli"});
    const int cport = std::stoi(client.expect("connected"));

    Session s({"--events", "reset", "--port", std::to_string(port), "--audit-interval", "1s"});
    std::vector<json> seen;
    // The first audit comes right after session_start, from the start-up scan.
    ASSERT_TRUE(read_until(
        s, seen, [](const json &) { return true; }, 10s));
    EXPECT_EQ(seen[0]["event"], "audit_process") << seen[0];
    const std::size_t progs = bpf_programs_of(s.pid());

    int batches = 0;
    auto is_client_process = [&](const json &e) {
        return e["event"] == "audit_process" && e["process"]["pid"] == client.pid();
    };
    batches += is_client_process(seen[0]) ? 1 : 0;
    while (batches < 3 && read_until(s, seen, is_client_process, 10s))
        ++batches;
    ASSERT_EQ(batches, 3);
    // Audits run the iterator of the programs loaded at start: nothing new.
    EXPECT_EQ(bpf_programs_of(s.pid()), progs);
    auto events = s.stop();
    events.insert(events.begin(), seen.begin(), seen.end());

    std::size_t client_sockets = 0, server_sockets = 0, processes = 0;
    for (auto &e : of_type(events, "audit_socket")) {
        // --port filters audits like events: nothing else on the host shows up.
        ASSERT_TRUE(e["local"]["port"] == port || e["remote"]["port"] == port) << e;
        if (e["process"]["pid"] == client.pid()) {
            ++client_sockets;
            EXPECT_EQ(e["process"]["comm"], "rw_agent_cli");
            EXPECT_EQ(e["local"]["port"], cport);
            EXPECT_EQ(e["remote"]["port"], port);
            EXPECT_EQ(e["keepalive"]["enabled"], false);
        } else if (e["process"]["pid"] == server.pid()) {
            ++server_sockets;
            EXPECT_EQ(e["local"]["port"], port);
            EXPECT_EQ(e["remote"]["port"], cport);
        }
    }
    for (auto &e : of_type(events, "audit_process"))
        if (e["process"]["pid"] == client.pid()) {
            ++processes;
            EXPECT_EQ(e["sockets"], 1);
            EXPECT_EQ(e["without_keepalive"], 1);
        }
    EXPECT_GE(processes, 3u);
    EXPECT_EQ(client_sockets, processes); // one socket per audit
    EXPECT_EQ(server_sockets, processes);
    // Audit lines count as emitted events.
    json sum = of_type(events, "session_summary").at(0);
    EXPECT_EQ(sum["emitted"].get<std::size_t>(),
              of_type(events, "audit_socket").size() + of_type(events, "audit_process").size());
}

TEST(AgentRateLimit, EveryResetIsEmittedOrCountedAsRateLimited) {
    RW_REQUIRE_BPF();
    const int port = free_port();
    Session s({"--events", "reset", "--port", std::to_string(port), "--max-events-per-sec", "20"});
    refused_burst(port, 150); // 300 resets, far over 20/s
    std::vector<json> seen;
    // Reported while the session runs (the 1 s tick), not only at exit.
    ASSERT_TRUE(read_until(
        s, seen, [](const json &e) { return e["event"] == "lost" && e["reason"] == "rate_limit"; },
        10s));
    auto events = s.stop();
    events.insert(events.begin(), seen.begin(), seen.end());

    const json sum = of_type(events, "session_summary").at(0);
    const std::uint64_t emitted = of_type(events, "tcp_reset").size();
    const std::uint64_t limited = sum_lost(events, "rate_limit");
    EXPECT_EQ(sum["resets"], 300);
    EXPECT_EQ(emitted + limited, 300u);
    EXPECT_EQ(sum["rate_limited"], limited);
    EXPECT_EQ(sum["emitted"], emitted);
    EXPECT_EQ(sum_lost(events, "rate_limit", "tcp_reset"), limited);
    EXPECT_GE(emitted, 20u); // the first second's burst
    EXPECT_GT(limited, 0u);
    // Running totals add up: the last record's total is the session's.
    auto lost = of_type(events, "lost");
    EXPECT_EQ(lost.back()["total"], limited);
    EXPECT_EQ(sum_lost(events, "ringbuf_full"), 0u);
}

TEST(AgentConfig, SighupAppliesSafeSettingsAndNamesWhatNeedsARestart) {
    RW_REQUIRE_BPF();
    TempDir dir("agentcfg");
    const int port = free_port(), port2 = free_port();
    const std::string cfg = dir / "rstwatch.conf";
    write_file(cfg, "# agent\nevents = reset\nport = " + std::to_string(port) +
                        "\nmax-events-per-sec = 5\n");
    Session s({"--config", cfg});
    refused_burst(port, 20); // 40 resets at 5/s: most are rate-limited
    std::vector<json> seen;
    ASSERT_TRUE(read_until(
        s, seen, [](const json &e) { return e["event"] == "lost" && e["reason"] == "rate_limit"; },
        10s));

    auto reloads = [&] {
        std::string err = s.child().stderr_text();
        std::size_t n = 0;
        for (auto p = err.find("SIGHUP: "); p != std::string::npos; p = err.find("SIGHUP: ", p + 1))
            ++n;
        return n;
    };
    write_file(cfg, "events = reset\nport = " + std::to_string(port2) +
                        "\nmax-events-per-sec = 100000\nringbuf-size = 16M\n");
    s.child().signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return reloads() == 1; }, 10s)) << s.child().stderr_text();
    std::string err = s.child().stderr_text();
    EXPECT_NE(err.find("applied max-events-per-sec"), std::string::npos) << err;
    EXPECT_NE(err.find("NOT applied, they need a restart (running values kept): port, "
                       "ringbuf-size"),
              std::string::npos)
        << err;

    refused_burst(port, 30); // 60 resets: the new limit lets every one through
    refused_burst(port2, 5); // the kernel-side port filter still says `port`

    write_file(cfg, "events = reset\nmax-events-per-sec = lots\n");
    s.child().signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return reloads() == 2; }, 10s)) << s.child().stderr_text();
    err = s.child().stderr_text();
    EXPECT_NE(err.find("SIGHUP: config not reloaded, the running configuration is unchanged"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("'lots' for --max-events-per-sec"), std::string::npos) << err;
    refused_burst(port, 10); // still 100000/s: all 20 emitted

    auto events = s.stop();
    events.insert(events.begin(), seen.begin(), seen.end());
    const json sum = of_type(events, "session_summary").at(0);
    const std::uint64_t limited = sum["rate_limited"];
    EXPECT_EQ(sum["resets"], 120);
    EXPECT_EQ(resets_on_port(events, port) + limited, 120u);
    EXPECT_EQ(resets_on_port(events, port2), 0u);
    EXPECT_GE(limited, 40u - 5u - 5u); // at most ~2 s of 5/s got through the first burst
    EXPECT_EQ(sum_lost(events, "rate_limit"), limited);
    // Everything after the reload went through: the limited count predates it.
    std::uint64_t before_reload = sum_lost(seen, "rate_limit");
    EXPECT_LE(limited, 40u);
    EXPECT_GE(limited, before_reload);
}

TEST(AgentUnit, RunsAsAnUnprivilegedUserWithOnlyTheUnitsCapabilities) {
    RW_REQUIRE_BPF();
    // The capability set of deploy/systemd/rstwatch.service, as systemd would
    // grant it to its non-root User= (ambient), run here through setpriv.
    std::string caps;
    for (auto &line : file_lines(std::string(RW_SOURCE_DIR) + "/deploy/systemd/rstwatch.service"))
        if (line.rfind("AmbientCapabilities=", 0) == 0) caps = line.substr(20);
    ASSERT_EQ(caps, "CAP_BPF CAP_PERFMON CAP_NET_ADMIN");
    std::string set = "-all";
    std::istringstream in(caps);
    for (std::string c; in >> c;) {
        std::string name = c.substr(4);
        for (auto &ch : name)
            ch = char(std::tolower(ch));
        set += ",+" + name;
    }
    TempDir dir("unitcaps");
    std::filesystem::permissions(dir.path, std::filesystem::perms::all); // nobody writes here
    const std::string out = dir / "events.ndjson";
    const int port = free_port(), mport = free_port();
    Child rw({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
              "--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set, rstwatch_bin(),
              "trace", "--events", "reset", "--port", std::to_string(port), "--audit-interval",
              "1s", "--metrics-listen", std::to_string(mport), "--output", out});
    ASSERT_TRUE(wait_for_line(out, "session_start")) << rw.stderr_text();
    refused_burst(port, 5);
    ASSERT_TRUE(wait_until(
        [&] {
            return of_type(
                       [&] {
                           std::vector<json> v;
                           for (auto &l : file_lines(out))
                               v.push_back(json::parse(l, nullptr, false));
                           return v;
                       }(),
                       "tcp_reset")
                       .size() == 10;
        },
        10s))
        << rw.stderr_text();
    HttpReply scrape = http_get(mport, "/metrics");
    EXPECT_EQ(scrape.status, 200);
    EXPECT_EQ(sample_value(scrape.body, "rstwatch_events_emitted_total", R"(event="tcp_reset")"),
              10);
    rw.signal(SIGTERM);
    EXPECT_EQ(rw.wait(), 0) << rw.stderr_text();
    auto lines = file_lines(out);
    json start = json::parse(lines.front());
    EXPECT_EQ(start["setsockopt_hook"], "cgroup"); // the cgroup hook attached without root
    json last = json::parse(lines.back());
    EXPECT_EQ(last["event"], "session_summary");
    EXPECT_EQ(last["emitted"], 10);
    struct stat st {};
    ASSERT_EQ(stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u); // written as the unprivileged user
}
