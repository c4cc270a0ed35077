#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/bad_cli_cases.hpp"
#include "cli/cli.hpp"
#include "util/cgroup_fs.hpp"
#include "util/error.hpp"

using namespace rstwatch;

namespace {

CliResult parse(std::vector<std::string> args) {
    std::ostringstream out;
    return parse_cli(args, out);
}

// The one-line message for a bad command line (exit 2): from parse_cli, or
// from the --cgroup check every command runs first (resolve_cgroup_option).
std::string usage_error(std::vector<std::string> args) {
    try {
        CliResult r = parse(args);
        if (r.command)
            std::visit(
                [](auto &o) {
                    if constexpr (requires { resolve_cgroup_option(o); }) resolve_cgroup_option(o);
                },
                *r.command);
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

// Every row of the shared table: exit 2, one line, naming the flag and the value.
class CliBadInput : public ::testing::TestWithParam<rwcases::BadCli> {};

TEST_P(CliBadInput, OneLineNamingFlagAndValue) {
    std::string msg = usage_error(GetParam().args);
    for (const auto &m : GetParam().mentions)
        EXPECT_NE(msg.find(m), std::string::npos) << "'" << m << "' not in: " << msg;
}

// /proc refuses new files to everyone, root included: an unwritable directory
// without needing privileges to make one.
std::vector<rwcases::BadCli> parse_time_cases() {
    std::vector<rwcases::BadCli> out;
    for (auto &c : rwcases::bad_cli_cases({"/proc", rwcases::cgroup_v1_dir_or_proc()}))
        if (!c.at_run_time) out.push_back(c);
    return out;
}

INSTANTIATE_TEST_SUITE_P(Table, CliBadInput, ::testing::ValuesIn(parse_time_cases()),
                         rwcases::BadCliName());

TEST(Cli, OutputProbeLeavesNothingBehind) {
    char tmpl[] = "/tmp/rwtest-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string dir = tmpl;
    auto r = parse({"trace", "--output", dir + "/new.ndjson", "--rotate-size", "64K"});
    ASSERT_TRUE(r.command);
    EXPECT_EQ(std::get<TraceOptions>(*r.command).out.rotate_size, 65536u);
    EXPECT_TRUE(std::filesystem::is_empty(dir)); // probed with O_TMPFILE
    // An existing file is appended to later; parsing leaves it as it was.
    { std::ofstream(dir + "/old.ndjson") << "keep\n"; }
    ASSERT_TRUE(parse({"trace", "--output", dir + "/old.ndjson"}).command);
    EXPECT_EQ(std::filesystem::file_size(dir + "/old.ndjson"), 5u);
    // A FIFO (a log pipeline) is accepted without blocking for a reader.
    ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0600), 0);
    EXPECT_TRUE(parse({"trace", "--output", dir + "/fifo"}).command);
    std::filesystem::remove_all(dir);
}

TEST(Cli, CgroupRootAcceptedInBothSpellings) {
    std::string root = cgroup2_mount_point();
    if (root.empty()) GTEST_SKIP() << "no cgroup v2 mount on this host";
    std::uint64_t id1 = 0, id2 = 0;
    int level1 = -1, level2 = -1;
    resolve_cgroup("/", id1, level1);
    resolve_cgroup(root, id2, level2);
    EXPECT_EQ(id1, id2);
    EXPECT_NE(id1, 0u);
    EXPECT_EQ(level1, 0);
    EXPECT_EQ(level2, 0);
}

// Parsing leaves the filesystem alone: --cgroup is resolved where the command
// starts, with the message the table above expects.
TEST(Cli, CgroupIsResolvedWhenTheCommandStartsNotWhileParsing) {
    auto r = parse({"trace", "--cgroup", "/no/such/cgroup/rwtest"});
    ASSERT_TRUE(r.command);
    auto t = std::get<TraceOptions>(*r.command);
    EXPECT_EQ(t.filter.cgroup, "/no/such/cgroup/rwtest");
    EXPECT_EQ(t.filter.cgroup_id, 0u);
    try {
        resolve_cgroup_option(t);
        ADD_FAILURE() << "no usage error";
    } catch (const UsageError &e) {
        EXPECT_EQ(e.code(), Exit::usage);
        EXPECT_EQ(
            std::string(e.what()).rfind("invalid value '/no/such/cgroup/rwtest' for --cgroup: "
                                        "expected an existing cgroup v2 directory",
                                        0),
            0u)
            << e.what();
    }
    // Without --cgroup there is nothing to resolve.
    auto plain = std::get<TraceOptions>(*parse({"trace"}).command);
    resolve_cgroup_option(plain);
    EXPECT_EQ(plain.filter.cgroup_level, -1);

    const std::string root = cgroup2_mount_point();
    if (root.empty()) GTEST_SKIP() << "no cgroup v2 mount on this host";
    auto e =
        std::get<EnforceOptions>(*parse({"enforce", "--cgroup", "/", "--idle", "60s"}).command);
    EXPECT_EQ(e.cgroup_id, 0u);
    resolve_cgroup_option(e);
    EXPECT_NE(e.cgroup_id, 0u);
    EXPECT_EQ(e.cgroup_level, 0);
    EXPECT_EQ(e.cgroup_dir, std::filesystem::weakly_canonical(root).string());
    auto t2 = std::get<TraceOptions>(*parse({"trace", "--cgroup", "/"}).command);
    resolve_cgroup_option(t2);
    EXPECT_EQ(t2.filter.cgroup_id, e.cgroup_id);
    EXPECT_EQ(t2.filter.cgroup_level, 0);
}

// A bad --cgroup set by the --config file names the file's line, at start and
// with --check-config, as every other flag's error does; not when the command
// line set it (it wins over the file).
TEST(Cli, CgroupFromTheConfigFileNamesItsLine) {
    char tmpl[] = "/tmp/rwtest-cli-cfg-XXXXXX";
    const int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    const std::string path = tmpl;
    std::ofstream(path) << "# agent\ncgroup = /no/such/cgroup/rwtest\n";
    chmod(path.c_str(), 0600);
    const std::string note = " (set in --config " + path + " line 2)";
    ASSERT_TRUE(parse({"trace", "--config", path}).command); // parsing alone accepts it
    std::string msg = usage_error({"trace", "--config", path});
    EXPECT_NE(msg.find("for --cgroup: "), std::string::npos) << msg;
    EXPECT_EQ(msg.size() >= note.size() ? msg.substr(msg.size() - note.size()) : msg, note) << msg;
    msg = usage_error({"trace", "--config", path, "--check-config"});
    EXPECT_EQ(msg.size() >= note.size() ? msg.substr(msg.size() - note.size()) : msg, note) << msg;
    msg = usage_error({"trace", "--config", path, "--cgroup", "/no/such/other/rwtest"});
    EXPECT_NE(msg.find("'/no/such/other/rwtest'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("--config"), std::string::npos) << msg;
    unlink(path.c_str());
}

TEST(Cli, LargestAcceptedValuesStayInRange) {
    auto r = parse({"trace", "--duration", "365d", "--min-idle", "49d", "--port", "65535", "--pid",
                    "4194304", "--ringbuf-size", "1G", "--middlebox-timeout", "365d"});
    ASSERT_TRUE(r.command);
    auto &t = std::get<TraceOptions>(*r.command);
    EXPECT_EQ(t.duration->count(), 365ll * 86'400'000);
    EXPECT_LE(t.filter.min_idle->count(), 0xffffffffll); // the kernel filter is u32 ms
    EXPECT_EQ(*t.filter.port, 65535);
    EXPECT_EQ(t.ringbuf_size, 1ull << 30);
}
