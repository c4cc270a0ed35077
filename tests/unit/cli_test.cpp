#include <gtest/gtest.h>
#include <sstream>

#include "rstwatch/cli.hpp"
#include "rstwatch/error.hpp"

using namespace rstwatch;

namespace {

CliResult parse(std::vector<std::string> args) {
    std::ostringstream out;
    return parse_cli(args, out);
}

// The one-line message for a bad command line (exit 2).
std::string usage_error(std::vector<std::string> args) {
    try {
        parse(args);
    } catch (const UsageError &e) {
        EXPECT_EQ(e.code(), Exit::usage);
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no usage error";
    return {};
}

} // namespace

TEST(Cli, TraceDefaults) {
    auto r = parse({"trace"});
    ASSERT_TRUE(r.command);
    auto &t = std::get<TraceOptions>(*r.command);
    EXPECT_EQ(t.events, kDefaultEvents);
    EXPECT_EQ(t.ringbuf_size, 4u << 20);
    EXPECT_EQ(t.out.format, Format::json);
    EXPECT_FALSE(t.duration);
}

TEST(Cli, TraceFlags) {
    auto r = parse({"-v",
                    "trace",
                    "--events",
                    "reset,keepalive",
                    "--duration",
                    "500ms",
                    "--count",
                    "3",
                    "--pid",
                    "42",
                    "--comm",
                    "nginx",
                    "--port",
                    "443",
                    "--min-idle",
                    "30s",
                    "--verdict",
                    "keepalive_disabled",
                    "--middlebox-timeout",
                    "aws-nat-gateway",
                    "--ringbuf-size",
                    "64K"});
    ASSERT_TRUE(r.command);
    EXPECT_TRUE(r.verbose);
    auto &t = std::get<TraceOptions>(*r.command);
    EXPECT_EQ(t.events, RW_EMIT_RESET | RW_EMIT_KEEPALIVE);
    EXPECT_EQ(t.duration->count(), 500);
    EXPECT_EQ(*t.count, 3u);
    EXPECT_EQ(*t.filter.pid, 42u);
    EXPECT_EQ(t.filter.comm, "nginx");
    EXPECT_EQ(*t.filter.port, 443);
    EXPECT_EQ(t.filter.min_idle->count(), 30000);
    EXPECT_EQ(*t.filter.verdict, Verdict::keepalive_disabled);
    EXPECT_EQ(t.middlebox_timeout->count(), 350000);
    EXPECT_EQ(t.ringbuf_size, 65536u);
}

TEST(Cli, HelpAndVersionExitZero) {
    std::ostringstream out;
    auto r = parse_cli({"--version"}, out);
    EXPECT_FALSE(r.command);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(out.str().find("rstwatch "), std::string::npos);
    std::ostringstream help;
    parse_cli({"trace", "--help"}, help);
    EXPECT_NE(help.str().find("--middlebox-timeout"), std::string::npos);
}

struct BadCase {
    std::vector<std::string> args;
    std::string must_mention;
};

class CliBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(CliBadInput, OneLineNamingFlagAndValue) {
    std::string msg = usage_error(GetParam().args);
    EXPECT_NE(msg.find(GetParam().must_mention), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Table, CliBadInput,
    ::testing::Values(BadCase{{"trace", "--duration", "10x"}, "'10x' for --duration"},
                      BadCase{{"trace", "--duration", "-5s"}, "'-5s' for --duration"},
                      BadCase{{"trace", "--duration", ""}, "for --duration"},
                      BadCase{{"trace", "--duration", "99999999999999999999h"}, "--duration"},
                      BadCase{{"trace", "--port", "0"}, "'0' for --port"},
                      BadCase{{"trace", "--port", "65536"}, "'65536' for --port"},
                      BadCase{{"trace", "--pid", "abc"}, "'abc' for --pid"},
                      BadCase{{"trace", "--count", "0"}, "'0' for --count"},
                      BadCase{{"trace", "--events", "reset,bogus"}, "--events"},
                      BadCase{{"trace", "--verdict", "maybe"}, "'maybe' for --verdict"},
                      BadCase{{"trace", "--ringbuf-size", "12345"}, "'12345' for --ringbuf-size"},
                      BadCase{{"trace", "--ringbuf-size", "2G"}, "'2G' for --ringbuf-size"},
                      BadCase{{"trace", "--format", "xml"}, "'xml' for --format"},
                      BadCase{{"trace", "--color", "pink"}, "'pink' for --color"},
                      BadCase{{"trace", "--comm", "a-name-longer-than-15"}, "--comm"},
                      BadCase{{"trace", "--middlebox-timeout", "aws"},
                              "'aws' for --middlebox-timeout"},
                      BadCase{{"trace", "--cgroup", "/no/such/cgroup/rwtest"}, "--cgroup"},
                      BadCase{{"trace", "--output", "/no/such/dir/out.json"}, "--output"},
                      BadCase{{"trace", "--output", "/tmp"}, "--output"},
                      BadCase{{"trace", "--rotate-keep", "0", "--output", "/tmp/rw.json"},
                              "'0' for --rotate-keep"},
                      BadCase{{"trace", "--rotate-size", "10M"}, "--rotate-size needs --output"},
                      BadCase{{"trace", "--bogus"}, "--bogus"},
                      BadCase{{"frobnicate"}, "frobnicate"}, BadCase{{}, "subcommand"}));
