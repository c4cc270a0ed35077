// Privileged: real output of every trace and audit event type validates
// against schema/ (the JSON contract), via scripts/validate-events.py.
#include <fstream>

#include "harness.hpp"

using namespace rwtest;

namespace {

void validate(const std::vector<std::string> &lines, const std::string &require) {
    std::string path = "/tmp/rwtest-schema-" + std::to_string(getpid()) + ".ndjson";
    {
        std::ofstream out(path);
        for (auto &l : lines)
            out << l << "\n";
    }
    std::string cmd = "/usr/bin/python3 " RW_SOURCE_DIR "/scripts/validate-events.py --require " +
                      require + " " + path + " 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        out.append(buf, n);
    int st = pclose(p);
    EXPECT_EQ(st, 0) << out;
    unlink(path.c_str());
}

std::vector<std::string> lines_of(Child &c) {
    auto lines = c.read_all(60s);
    EXPECT_EQ(c.wait(), 0) << c.stderr_text();
    return lines;
}

} // namespace

// Each session filters in the kernel on the test's own port or namespace, so
// other activity on the host cannot crowd its events out of the ring buffer.
std::vector<std::string> session_lines(Child &rw, const std::string &first) {
    rw.signal(SIGINT);
    auto lines = rw.read_all(30s);
    lines.insert(lines.begin(), first);
    EXPECT_EQ(rw.wait(), 0) << rw.stderr_text();
    return lines;
}

TEST(Schema, RealTraceOutputOfEveryEventTypeValidates) {
    RW_REQUIRE_BPF();
    // tcp_reset (both directions, no socket), keepalive_set, connection_closed,
    // process_summary, session_*: everything on one port.
    const int port = free_port();
    Child rw({rstwatch_bin(), "trace", "--events", "all", "--port", std::to_string(port)});
    auto start = rw.read_line(15s);
    ASSERT_TRUE(start.has_value());
    refused_burst(port, 2);
    {
        Child server(
            {peer_bin(), "server", "--port", std::to_string(port), "--abort-after-ms", "300"});
        server.expect("listening");
        Child peer({peer_bin(), "sockopts", "--port", std::to_string(port), "--hold-ms", "1000"});
        peer.expect("connected");
        peer.wait();
        server.wait();
    }
    auto lines = session_lines(rw, *start);

    // tcp_timeout: a silent drop inside the test's own namespace.
    NetNs ns("schema");
    ns.exec("sysctl -qw net.ipv4.tcp_retries2=3");
    Child rt(
        {rstwatch_bin(), "trace", "--events", "timeout", "--netns", std::to_string(ns.inode())});
    auto start_t = rt.read_line(15s);
    ASSERT_TRUE(start_t.has_value());
    {
        Child server(ns.wrap({peer_bin(), "server", "--hold-ms", "20000"}));
        int sport = std::stoi(server.expect("listening"));
        Child client(ns.wrap({peer_bin(), "client", "--port", std::to_string(sport), "--wait-line",
                              "--write", "--hold-ms", "20000"}),
                     true);
        client.expect("connected");
        ns.exec("nft add table inet rws && nft add chain inet rws in { type filter hook input "
                "priority 0 \\; } && "
                "nft add rule inet rws in tcp dport " +
                std::to_string(sport) + " drop");
        client.write_stdin("go\n");
        EXPECT_EQ(client.expect("result", 30s), "errno 110");
    }
    auto timeout_lines = session_lines(rt, *start_t);
    lines.insert(lines.end(), timeout_lines.begin(), timeout_lines.end());
    validate(lines,
             "session_start,tcp_reset,tcp_timeout,connection_closed,keepalive_set,process_summary,"
             "session_summary");

    // lost: a tiny ring buffer and a burst.
    const int lport = free_port();
    Child tiny({rstwatch_bin(), "trace", "--events", "reset", "--ringbuf-size", "4K", "--port",
                std::to_string(lport)});
    ASSERT_TRUE(tiny.read_line(15s).has_value());
    refused_burst(lport, 3000);
    sleep(2);
    tiny.signal(SIGINT);
    validate(lines_of(tiny), "lost,tcp_reset,session_summary");
}

TEST(Schema, RealAuditOutputValidates) {
    RW_REQUIRE_BPF();
    Child server({peer_bin(), "server", "--hold-ms", "5000"});
    int sport = std::stoi(server.expect("listening"));
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--keepalive", "--hold-ms",
                  "5000"});
    client.expect("connected");
    Child plain({rstwatch_bin(), "audit"});
    validate(lines_of(plain), "audit_socket,audit_process");
    Child risk({rstwatch_bin(), "audit", "--middlebox-timeout", "aws-nat-gateway"});
    validate(lines_of(risk), "audit_socket,audit_process");
}
