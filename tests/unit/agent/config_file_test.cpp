#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.hpp"
#include "agent/config_file.hpp"
#include "util/error.hpp"

using namespace rstwatch;

namespace {

std::string usage_error(const std::function<void()> &f) {
    try {
        f();
    } catch (const UsageError &e) {
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no usage error";
    return {};
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::string &text, mode_t mode = 0600) {
        char t[] = "/tmp/rw-config-XXXXXX";
        int fd = mkstemp(t);
        close(fd);
        path = t;
        write(text);
        chmod(path.c_str(), mode);
    }
    void write(const std::string &text) const { std::ofstream(path, std::ios::trunc) << text; }
    ~TempFile() { unlink(path.c_str()); }
};

TraceOptions trace(std::vector<std::string> args) {
    std::ostringstream out;
    auto r = parse_cli(args, out);
    return std::get<TraceOptions>(*r.command);
}

} // namespace

TEST(ConfigFile, KeyValueLinesCommentsQuotes) {
    auto e = parse_config_text("# agent\n"
                               "\n"
                               "  max-events-per-sec = 500  \n"
                               "output=/var/log/rstwatch/events.ndjson\n"
                               "comm = \"a b#c\\\"d\\\\\"\n"
                               "--port = 443\r\n"
                               "last = no newline at end",
                               "f");
    ASSERT_EQ(e.size(), 5u);
    EXPECT_EQ(e[0].key, "max-events-per-sec");
    EXPECT_EQ(e[0].value, "500");
    EXPECT_EQ(e[0].line, 3u);
    EXPECT_EQ(e[1].value, "/var/log/rstwatch/events.ndjson");
    EXPECT_EQ(e[2].value, "a b#c\"d\\");
    EXPECT_EQ(e[3].key, "port"); // a pasted --flag is accepted
    EXPECT_EQ(e[3].value, "443");
    EXPECT_EQ(e[4].value, "no newline at end");
    EXPECT_EQ(e[4].line, 7u);
}

TEST(ConfigFile, ErrorsNameFileAndLine) {
    EXPECT_NE(usage_error([] {
                  parse_config_text("a = 1\njust words\n", "/etc/x");
              }).find("--config /etc/x line 2: expected 'key = value'"),
              std::string::npos);
    EXPECT_NE(usage_error([] {
                  parse_config_text("port = 1\nport = 2\n", "f");
              }).find("line 2: port is set more than once"),
              std::string::npos);
    EXPECT_NE(usage_error([] { parse_config_text("Port = 1", "f"); }).find("line 1"),
              std::string::npos);
    EXPECT_NE(usage_error([] { parse_config_text("port =", "f"); }).find("no value for port"),
              std::string::npos);
    EXPECT_NE(usage_error([] { parse_config_text("comm = \"abc", "f"); }).find("unterminated"),
              std::string::npos);
    EXPECT_NE(usage_error([] { parse_config_text("comm = \"a\" b", "f"); }).find("after"),
              std::string::npos);
}

TEST(ConfigFile, RefusesAFileEveryUserMayWrite) {
    TempFile f("port = 1\n", 0666);
    EXPECT_NE(usage_error([&] { load_config_file(f.path); }).find("chmod o-w"), std::string::npos);
    EXPECT_NE(usage_error([] { load_config_file("/no/such/rw.conf"); }).find("cannot read"),
              std::string::npos);
}

TEST(ConfigFile, SetsEveryTraceFlagAndTheCommandLineWins) {
    TempFile f("events = reset,keepalive\n"
               "port = 443\n"
               "max-events-per-sec = 100\n"
               "audit-interval = 5m\n"
               "metrics-listen = 0.0.0.0:9478\n"
               "metrics-top-comm = 7\n"
               "middlebox-timeout = aws-nat-gateway\n"
               "verdict = keepalive_disabled\n");
    auto t = trace({"trace", "--config", f.path, "--port", "80", "--max-events-per-sec", "5"});
    EXPECT_EQ(*t.filter.port, 80);       // command line
    EXPECT_EQ(t.max_events_per_sec, 5u); // command line
    EXPECT_EQ(t.events, RW_EMIT_RESET | RW_EMIT_KEEPALIVE);
    EXPECT_EQ(t.audit_interval->count(), 300000);
    ASSERT_TRUE(t.metrics_listen);
    EXPECT_EQ(t.metrics_listen->host, "0.0.0.0");
    EXPECT_EQ(t.metrics_listen->port, 9478);
    EXPECT_EQ(t.metrics_top_comm, 7u);
    EXPECT_EQ(t.middlebox_timeout->count(), 350000);
    EXPECT_EQ(*t.filter.verdict, Verdict::keepalive_disabled);
    EXPECT_EQ(t.config_path, f.path);
    EXPECT_EQ(t.cli_args.front(), "trace");
}

TEST(ConfigFile, UnknownKeysAndBadValuesNameTheLine) {
    TempFile unknown("port = 1\nmax-event-per-sec = 3\n");
    std::string m = usage_error([&] { trace({"trace", "--config", unknown.path}); });
    EXPECT_NE(m.find("line 2: unknown key 'max-event-per-sec'"), std::string::npos) << m;
    TempFile bad("# x\nrotate-size = 1K\noutput = /tmp/rw-cfg-test.json\n");
    m = usage_error([&] { trace({"trace", "--config", bad.path}); });
    EXPECT_NE(m.find("'1K' for --rotate-size"), std::string::npos) << m;
    EXPECT_NE(m.find("line 2)"), std::string::npos) << m;
    TempFile nested("config = /etc/other\n");
    m = usage_error([&] { trace({"trace", "--config", nested.path}); });
    EXPECT_NE(m.find("cannot be set in a config file"), std::string::npos) << m;
}

TEST(ConfigFile, ReloadReadsTheFileAgainCommandLineStillWins) {
    TempFile f("max-events-per-sec = 100\nport = 443\n");
    auto t = trace({"trace", "--config", f.path, "--verdict", "no_socket"});
    f.write("max-events-per-sec = 7\nport = 8443\nverdict = unknown\n");
    TraceOptions r = reload_trace_options(t);
    EXPECT_EQ(r.max_events_per_sec, 7u);
    EXPECT_EQ(*r.filter.port, 8443);
    EXPECT_EQ(*r.filter.verdict, Verdict::no_socket);
    f.write("max-events-per-sec = many\n");
    EXPECT_NE(usage_error([&] { reload_trace_options(t); }).find("--max-events-per-sec"),
              std::string::npos);
}
