// The agent-mode flags of `rstwatch trace` (config-file handling is in
// config_file_test.cpp).
#include <gtest/gtest.h>
#include <sstream>

#include "cli/cli.hpp"
#include "util/error.hpp"

using namespace rstwatch;

namespace {

TraceOptions trace(std::vector<std::string> args) {
    std::ostringstream out;
    return std::get<TraceOptions>(*parse_cli(args, out).command);
}

} // namespace

TEST(AgentCli, Flags) {
    auto t = trace({"trace", "--audit-interval", "5m", "--max-events-per-sec", "1000",
                    "--metrics-listen", "9478", "--metrics-top-comm", "5"});
    EXPECT_EQ(t.audit_interval->count(), 300000);
    EXPECT_EQ(t.max_events_per_sec, 1000u);
    ASSERT_TRUE(t.metrics_listen);
    EXPECT_EQ(t.metrics_listen->host, "127.0.0.1"); // a bare port is loopback
    EXPECT_EQ(t.metrics_listen->port, 9478);
    EXPECT_EQ(t.metrics_top_comm, 5u);
    EXPECT_TRUE(t.cli_args.empty()); // no --config: nothing to reload
    auto v6 = trace({"trace", "--metrics-listen", "[::1]:9100"});
    EXPECT_EQ(v6.metrics_listen->host, "::1");
    EXPECT_EQ(v6.metrics_listen->port, 9100);
    EXPECT_EQ(trace({"trace", "--metrics-listen", "0.0.0.0:1"}).metrics_listen->host, "0.0.0.0");
    auto defaults = trace({"trace"});
    EXPECT_FALSE(defaults.metrics_listen);
    EXPECT_FALSE(defaults.audit_interval);
    EXPECT_EQ(defaults.max_events_per_sec, 0u);
    EXPECT_EQ(defaults.metrics_top_comm, 20u);
}

TEST(AgentCli, CheckConfigValidatesAndLoadsNothing) {
    std::ostringstream out;
    auto r = parse_cli({"trace", "--max-events-per-sec", "10", "--check-config"}, out);
    EXPECT_FALSE(r.command); // nothing to run
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(out.str(), "rstwatch trace: configuration is valid\n");
    EXPECT_THROW(parse_cli({"trace", "--max-events-per-sec", "0", "--check-config"}, out),
                 UsageError);
}

struct AgentBadCase {
    std::vector<std::string> args;
    std::string must_mention;
};

class AgentCliBadInput : public ::testing::TestWithParam<AgentBadCase> {};

TEST_P(AgentCliBadInput, OneLineNamingFlagAndValue) {
    std::ostringstream out;
    try {
        parse_cli(GetParam().args, out);
        ADD_FAILURE() << "no usage error";
    } catch (const UsageError &e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_NE(msg.find(GetParam().must_mention), std::string::npos) << msg;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Table, AgentCliBadInput,
    ::testing::Values(
        AgentBadCase{{"trace", "--audit-interval", "500ms"}, "'500ms' for --audit-interval"},
        AgentBadCase{{"trace", "--audit-interval", "soon"}, "'soon' for --audit-interval"},
        AgentBadCase{{"trace", "--max-events-per-sec", "0"}, "'0' for --max-events-per-sec"},
        AgentBadCase{{"trace", "--max-events-per-sec", "1e3"}, "'1e3' for --max-events-per-sec"},
        AgentBadCase{{"trace", "--metrics-listen", "localhost:9478"},
                     "'localhost:9478' for --metrics-listen"},
        AgentBadCase{{"trace", "--metrics-listen", ":9478"}, "':9478' for --metrics-listen"},
        AgentBadCase{{"trace", "--metrics-listen", "70000"}, "'70000' for --metrics-listen"},
        AgentBadCase{{"trace", "--metrics-listen", "[::1]"}, "'[::1]' for --metrics-listen"},
        AgentBadCase{{"trace", "--metrics-listen", "1.2.3:80"}, "for --metrics-listen"},
        AgentBadCase{{"trace", "--metrics-top-comm", "0"}, "'0' for --metrics-top-comm"},
        AgentBadCase{{"trace", "--config", "/no/such/rstwatch.conf"},
                     "--config /no/such/rstwatch.conf"}));
