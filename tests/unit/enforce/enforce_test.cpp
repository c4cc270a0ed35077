// `rstwatch enforce` without privileges: option validation (table-driven),
// the capability check's messages, and the exact JSON of its events.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sstream>
#include <sys/stat.h>

#include "../fixtures.hpp"
#include "cli/cli.hpp"
#include "enforce/enforce.hpp"
#include "enforce/format.hpp"
#include "util/cgroup_fs.hpp"
#include "util/error.hpp"

using namespace rstwatch;

namespace {

// The options as `rstwatch enforce` starts with them: parsed, then --cgroup
// resolved (the command's first step).
EnforceOptions parse_enforce(std::vector<std::string> args) {
    std::ostringstream out;
    args.insert(args.begin(), "enforce");
    auto r = parse_cli(args, out);
    EXPECT_TRUE(r.command);
    auto o = std::get<EnforceOptions>(*r.command);
    resolve_cgroup_option(o);
    return o;
}

std::string usage_error(std::vector<std::string> args) {
    std::ostringstream out;
    args.insert(args.begin(), "enforce");
    try {
        auto r = parse_cli(args, out);
        if (r.command) resolve_cgroup_option(std::get<EnforceOptions>(*r.command));
    } catch (const UsageError &e) {
        EXPECT_EQ(e.code(), Exit::usage);
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no usage error";
    return {};
}

#define RW_REQUIRE_CGROUP2()                                                                       \
    do {                                                                                           \
        if (cgroup2_mount_point().empty()) GTEST_SKIP() << "no cgroup v2 mount on this host";      \
    } while (0)

std::uint64_t inode_of(const std::string &p) {
    struct stat st {};
    stat(p.c_str(), &st);
    return st.st_ino;
}

} // namespace

TEST(EnforceCli, Defaults) {
    RW_REQUIRE_CGROUP2();
    auto o = parse_enforce({"--cgroup", "/", "--idle", "30s"});
    EXPECT_EQ(o.action, EnforceAction::enforce);
    EXPECT_EQ(o.idle_s, 30u);
    EXPECT_FALSE(o.interval_s);
    EXPECT_FALSE(o.probes);
    EXPECT_EQ(o.mode, EnforceMode::unset_only);
    EXPECT_FALSE(o.existing);
    EXPECT_FALSE(o.dry_run);
    EXPECT_FALSE(o.pin);
    EXPECT_FALSE(o.duration);
    EXPECT_EQ(o.cgroup, "/");
    EXPECT_EQ(o.cgroup_level, 0);
    EXPECT_EQ(o.cgroup_dir, cgroup2_mount_point());
    EXPECT_EQ(o.cgroup_id, inode_of(cgroup2_mount_point()));
}

TEST(EnforceCli, EveryFlag) {
    RW_REQUIRE_CGROUP2();
    auto o = parse_enforce({"--cgroup", cgroup2_mount_point(), "--idle", "5m", "--interval", "10s",
                            "--probes", "127", "--mode", "always", "--existing", "--dry-run",
                            "--middlebox-timeout", "aws-nat-gateway", "--duration", "1h",
                            "--format", "text"});
    EXPECT_EQ(o.idle_s, 300u);
    EXPECT_EQ(*o.interval_s, 10u);
    EXPECT_EQ(*o.probes, 127u);
    EXPECT_EQ(o.mode, EnforceMode::always);
    EXPECT_TRUE(o.existing);
    EXPECT_TRUE(o.dry_run);
    EXPECT_EQ(o.middlebox_timeout->count(), 350000);
    EXPECT_EQ(o.duration->count(), 3600000);
    EXPECT_EQ(o.out.format, Format::text);
    EXPECT_EQ(o.cgroup_level, 0);
}

TEST(EnforceCli, KernelLimitsAreAccepted) {
    RW_REQUIRE_CGROUP2();
    auto o = parse_enforce(
        {"--cgroup", "/", "--idle", "1s", "--interval", "32767s", "--probes", "1", "--pin"});
    EXPECT_EQ(o.idle_s, 1u);
    EXPECT_EQ(*o.interval_s, 32767u);
    EXPECT_EQ(*o.probes, 1u);
    EXPECT_TRUE(o.pin);
    EXPECT_EQ(parse_enforce({"--cgroup", "/", "--idle", "32767"}).idle_s, 32767u);
}

TEST(EnforceCli, StatusAndRemove) {
    RW_REQUIRE_CGROUP2();
    auto s = parse_enforce({"--status"});
    EXPECT_EQ(s.action, EnforceAction::status);
    EXPECT_TRUE(s.cgroup.empty());
    auto sc = parse_enforce({"--status", "--cgroup", "/", "--format", "text"});
    EXPECT_EQ(sc.action, EnforceAction::status);
    EXPECT_EQ(sc.cgroup_id, inode_of(cgroup2_mount_point()));
    auto r = parse_enforce({"--remove", "--cgroup", "/"});
    EXPECT_EQ(r.action, EnforceAction::remove);
    EXPECT_EQ(r.cgroup_dir, cgroup2_mount_point());
}

struct EnforceBad {
    std::vector<std::string> args;
    std::string must_mention;
};

class EnforceCliBadInput : public ::testing::TestWithParam<EnforceBad> {};

TEST_P(EnforceCliBadInput, OneLineNamingFlagAndValue) {
    std::string msg = usage_error(GetParam().args);
    EXPECT_NE(msg.find(GetParam().must_mention), std::string::npos) << msg;
}

// Value checks come before the cgroup is looked up, so these hold on any host.
INSTANTIATE_TEST_SUITE_P(
    Table, EnforceCliBadInput,
    ::testing::Values(
        EnforceBad{{"--idle", "30s"}, "--cgroup PATH is required"},
        EnforceBad{{"--cgroup", "/"}, "--idle DURATION is required"},
        EnforceBad{{"--cgroup", "/", "--idle", "0s"}, "'0s' for --idle"},
        EnforceBad{{"--cgroup", "/", "--idle", "32768s"}, "'32768s' for --idle"},
        EnforceBad{{"--cgroup", "/", "--idle", "10h"}, "TCP_KEEPIDLE"},
        EnforceBad{{"--cgroup", "/", "--idle", "1500ms"}, "a whole number of seconds"},
        EnforceBad{{"--cgroup", "/", "--idle", "soon"}, "'soon' for --idle"},
        EnforceBad{{"--cgroup", "/", "--idle", "-5s"}, "'-5s' for --idle"},
        EnforceBad{{"--cgroup", "/", "--idle", ""}, "for --idle"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--interval", "0s"}, "'0s' for --interval"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--interval", "40000s"}, "TCP_KEEPINTVL"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--probes", "0"}, "'0' for --probes"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--probes", "128"}, "TCP_KEEPCNT"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--probes", "3x"}, "'3x' for --probes"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--mode", "sometimes"},
                   "'sometimes' for --mode"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--middlebox-timeout", "aws"},
                   "'aws' for --middlebox-timeout"},
        EnforceBad{{"--cgroup", "/", "--idle", "350s", "--middlebox-timeout", "aws-nat-gateway"},
                   "--idle 350s must be shorter than --middlebox-timeout aws-nat-gateway"},
        EnforceBad{{"--cgroup", "/", "--idle", "6m", "--middlebox-timeout", "5m"},
                   "--idle 6m must be shorter than --middlebox-timeout 5m"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--duration", "0s"}, "'0s' for --duration"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--format", "xml"}, "'xml' for --format"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--pin", "--dry-run"},
                   "--dry-run cannot be combined with --pin"},
        EnforceBad{{"--remove", "--cgroup", "/", "--idle", "30s"},
                   "--idle 30s cannot be combined with --remove"},
        EnforceBad{{"--remove", "--cgroup", "/", "--mode", "always"},
                   "--mode always cannot be combined with --remove"},
        EnforceBad{{"--remove", "--cgroup", "/", "--pin"},
                   "--pin cannot be combined with --remove"},
        EnforceBad{{"--remove"}, "--remove needs --cgroup"},
        EnforceBad{{"--remove", "--status", "--cgroup", "/"},
                   "--remove cannot be combined with --status"},
        EnforceBad{{"--status", "--existing"}, "--existing cannot be combined with --status"},
        EnforceBad{{"--status", "--duration", "1s"},
                   "--duration 1s cannot be combined with --status"},
        EnforceBad{{"--cgroup", "/no/such/cgroup/rwtest", "--idle", "30s"},
                   "'/no/such/cgroup/rwtest' for --cgroup"},
        EnforceBad{{"--remove", "--cgroup", "/no/such/cgroup/rwtest"}, "for --cgroup"},
        EnforceBad{{"--cgroup", "/", "--idle", "30s", "--bogus"}, "--bogus"}));

// ---- capabilities ----

namespace {
constexpr std::uint64_t cap(int c) {
    return 1ull << c;
}
constexpr int kCapBpf = 39, kCapPerfmon = 38;
} // namespace

TEST(EnforceCapabilities, EnoughMeansNoMessage) {
    const std::uint64_t all = cap(kCapBpf) | cap(kCapPerfmon) | cap(CAP_NET_ADMIN);
    EXPECT_EQ(enforce_capability_problem(all, EnforceAction::enforce), "");
    EXPECT_EQ(enforce_capability_problem(cap(kCapBpf), EnforceAction::remove), "");
    // CAP_SYS_ADMIN stands in for all of them, and is what --status needs.
    for (auto a : {EnforceAction::enforce, EnforceAction::remove, EnforceAction::status})
        EXPECT_EQ(enforce_capability_problem(cap(CAP_SYS_ADMIN), a), "");
}

TEST(EnforceCapabilities, NamesEachMissingCapability) {
    std::string m =
        enforce_capability_problem(cap(kCapBpf) | cap(kCapPerfmon), EnforceAction::enforce);
    EXPECT_NE(m.find("missing CAP_NET_ADMIN (to attach programs to a cgroup"), std::string::npos)
        << m;
    EXPECT_EQ(m.find("CAP_BPF (to"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos);

    m = enforce_capability_problem(cap(CAP_NET_ADMIN) | cap(kCapPerfmon), EnforceAction::enforce);
    EXPECT_NE(m.find("missing CAP_BPF (to load BPF programs): "), std::string::npos) << m;
    EXPECT_EQ(m.find("CAP_NET_ADMIN (to"), std::string::npos) << m;

    m = enforce_capability_problem(0, EnforceAction::enforce);
    for (const char *c : {"CAP_BPF (", "CAP_PERFMON (", "CAP_NET_ADMIN ("})
        EXPECT_NE(m.find(c), std::string::npos) << m;
    EXPECT_NE(m.find("run it as root"), std::string::npos);

    m = enforce_capability_problem(cap(CAP_NET_ADMIN), EnforceAction::remove);
    EXPECT_NE(m.find("missing CAP_BPF"), std::string::npos) << m;
    m = enforce_capability_problem(cap(kCapBpf) | cap(CAP_NET_ADMIN), EnforceAction::status);
    EXPECT_NE(m.find("CAP_SYS_ADMIN"), std::string::npos) << m;
}

// ---- events ----

namespace {

rw_enforce sample_record() {
    rw_enforce r{};
    r.hdr.type = RW_REC_ENFORCE;
    r.hdr.size = sizeof(r);
    fixtures::set_v4(r.ep.local_addr, "10.0.1.2");
    fixtures::set_v4(r.ep.remote_addr, "10.0.2.2");
    r.ep.local_port = 40000;
    r.ep.remote_port = 5432;
    r.ep.family = 2;
    r.ep.state = 1;
    r.owner = fixtures::owner(4242, "worker", RW_OWNER_LISTENER);
    r.owner.uid = 1000;
    r.owner.cgroup_id = 5711;
    r.netns = 4026531840u;
    r.previous = rw_keepalive{7200, 75, 9, 0, 0, 0, 0};
    r.applied = rw_keepalive{60, 10, 5, 1, 0, 0, 0};
    r.trigger = RW_ENF_PASSIVE;
    return r;
}

constexpr std::int64_t kTs = 1795550761123456789LL;

} // namespace

TEST(EnforceFormat, KeepaliveEnforcedJson) {
    auto f = make_enforce_formatter(Format::json, "web-1");
    rw_enforce r = sample_record();
    CgroupInfo cg{"/system.slice/worker.service", {}};
    std::string out;
    f->enforced(out, EnforcedEvent{r, kTs, &cg});
    EXPECT_EQ(out,
              R"({"v":1,"event":"keepalive_enforced","ts":"2026-11-24T20:06:01.123456789Z",)"
              R"("host":"web-1","trigger":"passive_open",)"
              R"("process":{"pid":4242,"comm":"worker","uid":1000},"owner_source":"listener",)"
              R"("cgroup_id":5711,"cgroup":"/system.slice/worker.service","container_id":null,)"
              R"("pod_uid":null,"family":"ipv4","local":{"addr":"10.0.1.2","port":40000},)"
              R"("remote":{"addr":"10.0.2.2","port":5432},"netns":4026531840,)"
              R"("previous":{"enabled":false,"idle_s":7200,"interval_s":75,"probes":9},)"
              R"("applied":{"enabled":true,"idle_s":60,"interval_s":10,"probes":5},)"
              R"("dry_run":false,"error":null})"
              "\n");
}

TEST(EnforceFormat, UnknownOwnerUnconnectedAndFailed) {
    auto f = make_enforce_formatter(Format::json, "h");
    rw_enforce r = sample_record();
    r.owner = {};
    r.ep = {};
    r.netns = 0;
    r.error = -22; // as bpf_setsockopt returns it
    r.dry_run = 1;
    r.trigger = RW_ENF_CLAMP;
    std::string out;
    f->enforced(out, EnforcedEvent{r, kTs, nullptr});
    for (const char *frag :
         {R"("trigger":"setsockopt")", R"("process":null,"owner_source":null,"cgroup_id":null)",
          R"("cgroup":null,"container_id":null,"pod_uid":null)",
          R"("family":null,"local":null,"remote":null,"netns":null)",
          R"("dry_run":true,"error":22})"})
        EXPECT_NE(out.find(frag), std::string::npos) << frag << "\n" << out;
}

TEST(EnforceFormat, StartStopAndRemovedJson) {
    auto f = make_enforce_formatter(Format::json, "h");
    EnforceSettings s;
    s.cgroup_id = 9;
    s.cgroup = "/app";
    s.idle_s = 30;
    s.probes = 3;
    EnforceStart st{kTs, "1.2.3", "6.18.0", 77, s, {"sockops"}, 4, ExistingSummary{2, 1, 0}, "", 5};
    std::string out;
    f->start(out, st);
    EXPECT_NE(out.find(R"("event":"enforce_start")"), std::string::npos);
    EXPECT_NE(out.find(R"("version":"1.2.3","kernel":"6.18.0","pid":77,"cgroup":"/app",)"
                       R"("cgroup_id":9,"mode":"unset-only","idle_s":30,"interval_s":null,)"
                       R"("probes":3,"dry_run":false,"programs":["sockops"],"owners_seeded":4,)"
                       R"("existing":{"connections":2,"namespaces":1,"namespaces_skipped":0},)"
                       R"("pinned":null,"startup_ms":5,"programs_left_out":[]})"),
              std::string::npos)
        << out;
    out.clear();
    st.left_out.push_back({"rw_enf_owners", "iter/task_file", "owners of earlier connections",
                           "R2 type=untrusted_ptr_"});
    f->start(out, st);
    EXPECT_NE(out.find(R"("programs_left_out":[{"program":"rw_enf_owners",)"
                       R"("section":"iter/task_file","lost":"owners of earlier connections",)"
                       R"("reason":"R2 type=untrusted_ptr_"}]})"),
              std::string::npos)
        << out;

    out.clear();
    EnforceCounters c;
    c.v[RW_ENF_CNT_ACTIVE] = 1;
    c.v[RW_ENF_CNT_PASSIVE] = 2;
    c.v[RW_ENF_CNT_EXISTING] = 3;
    c.v[RW_ENF_CNT_CLAMP] = 4;
    c.v[RW_ENF_CNT_KEPT] = 5;
    c.v[RW_ENF_CNT_ERRORS] = 6;
    c.v[RW_ENF_CNT_LOST] = 7;
    EXPECT_EQ(c.changed(), 10u);
    f->stop(out, EnforceStop{kTs, 1500, "duration", c, false, "/sys/fs/bpf/rstwatch/enforce/cg9"});
    EXPECT_NE(out.find(R"("duration_ms":1500,"end_reason":"duration","enforced":)"
                       R"({"active_open":1,"passive_open":2,"existing":3,"setsockopt":4},)"
                       R"("kept":5,"errors":6,"lost":7,"detached":false,)"
                       R"("pinned":"/sys/fs/bpf/rstwatch/enforce/cg9"})"),
              std::string::npos)
        << out;

    out.clear();
    RemoveResult rr{"/sys/fs/bpf/rstwatch/enforce/cg9", {}};
    f->removed(out, EnforceRemoved{kTs, "/app", 9, rr});
    EXPECT_NE(out.find(R"("cgroup":"/app","cgroup_id":9,)"
                       R"("pin_dir":"/sys/fs/bpf/rstwatch/enforce/cg9","removed":[]})"),
              std::string::npos)
        << out;
}

TEST(EnforceFormat, TextLines) {
    auto f = make_enforce_formatter(Format::text, "h");
    rw_enforce r = sample_record();
    std::string out;
    f->enforced(out, EnforcedEvent{r, kTs, nullptr});
    EXPECT_EQ(out, "2026-11-24T20:06:01.123456789Z set keepalive on, idle 60s, interval 10s, 5 "
                   "probes (was keepalive off (idle 7200s)) on worker[4242] 10.0.1.2:40000 -> "
                   "10.0.2.2:5432 (passive_open)\n");
    out.clear();
    r.dry_run = 1;
    f->enforced(out, EnforcedEvent{r, kTs, nullptr});
    EXPECT_NE(out.find(" would set keepalive on"), std::string::npos) << out;
}

TEST(EnforceFormat, TriggerAndModeNames) {
    EXPECT_EQ(enforce_trigger_name(RW_ENF_ACTIVE), "active_open");
    EXPECT_EQ(enforce_trigger_name(RW_ENF_PASSIVE), "passive_open");
    EXPECT_EQ(enforce_trigger_name(RW_ENF_EXISTING), "existing");
    EXPECT_EQ(enforce_trigger_name(RW_ENF_CLAMP), "setsockopt");
    EXPECT_EQ(enforce_trigger_name(99), "unknown");
    EXPECT_EQ(to_string(EnforceMode::unset_only), "unset-only");
    EXPECT_EQ(to_string(EnforceMode::always), "always");
    rw_enforce_config c{};
    c.cgroup_id = 3;
    c.idle_s = 20;
    c.mode = RW_ENF_MODE_ALWAYS;
    c.dry_run = 1;
    auto s = EnforceSettings::from_config(c);
    EXPECT_EQ(s.mode, EnforceMode::always);
    EXPECT_EQ(s.idle_s, 20u);
    EXPECT_FALSE(s.interval_s);
    EXPECT_FALSE(s.probes);
    EXPECT_TRUE(s.dry_run);
}
