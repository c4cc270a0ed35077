// rstwatch doctor without privileges: sysctl.conf parsing, the sysctl.d
// precedence, and every check judged on fixture trees (tests/fixtures/doctor/*:
// a fake /proc/sys and /etc per case).
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../fixtures.hpp"
#include "cli/cli.hpp"
#include "cmd/commands.hpp"
#include "doctor/doctor.hpp"
#include "util/error.hpp"

using namespace rstwatch;
using namespace rstwatch::doctor;
using std::chrono::milliseconds;

namespace {

std::string fixture(const std::string &name) {
    return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "fixtures" /
            "doctor" / name)
        .string();
}

const Check &find(const std::vector<Check> &v, const std::string &id) {
    for (const auto &c : v)
        if (c.id == id) return c;
    throw std::runtime_error("no check " + id);
}

bool has(const std::string &s, const std::string &part) {
    return s.find(part) != std::string::npos;
}

} // namespace

TEST(DoctorParse, SysctlConfLinesCommentsAndSeparators) {
    auto v = parse_sysctl_conf("# comment\n"
                               "; other comment\n"
                               "  net.ipv4.tcp_keepalive_time=300  \n"
                               "\n"
                               "net/ipv4/tcp_keepalive_intvl = 30\n"
                               "-net.ipv4.tcp_keepalive_probes = 5\n"
                               "no equals sign here\n"
                               "net.ipv4.tcp_rmem = 4096\t87380 6291456\n"
                               "net/ipv4/conf/eth0.100/rp_filter = 2",
                               "/etc/sysctl.d/x.conf");
    ASSERT_EQ(v.size(), 5u);
    EXPECT_EQ(v[0].key, "net.ipv4.tcp_keepalive_time");
    EXPECT_EQ(v[0].value, "300");
    EXPECT_EQ(v[0].line, 3);
    EXPECT_EQ(v[0].file, "/etc/sysctl.d/x.conf");
    EXPECT_EQ(v[1].key, "net.ipv4.tcp_keepalive_intvl");
    EXPECT_EQ(v[1].value, "30");
    EXPECT_EQ(v[2].key, "net.ipv4.tcp_keepalive_probes"); // '-' only means "ignore errors"
    EXPECT_EQ(v[2].line, 6);
    EXPECT_EQ(v[3].value, "4096\t87380 6291456");
    // With '/' separators a dot belongs to the name (a VLAN interface).
    EXPECT_EQ(v[4].key, "net.ipv4.conf.eth0/100.rp_filter");
    EXPECT_EQ(normalize_sysctl_key(" net.ipv4.ip_forward "), "net.ipv4.ip_forward");
    EXPECT_TRUE(parse_sysctl_conf("", "f").empty());
}

TEST(DoctorParse, SysctlDPrecedenceMaskingAndSysctlConfLast) {
    auto p = persisted_sysctls(fixture("tuned-host"));
    // /etc/sysctl.d/10-net.conf masks /usr/lib/sysctl.d/10-net.conf.
    ASSERT_TRUE(p.count("net.ipv4.tcp_keepalive_time"));
    EXPECT_EQ(p["net.ipv4.tcp_keepalive_time"].value, "300");
    EXPECT_EQ(p["net.ipv4.tcp_keepalive_time"].file, "/etc/sysctl.d/10-net.conf");
    EXPECT_EQ(p["net.ipv4.tcp_keepalive_time"].line, 3);
    // 20-vendor.conf is masked by a symlink to /dev/null.
    EXPECT_FALSE(p.count("net.ipv4.tcp_keepalive_intvl"));
    // 50-default (3) < 60-runtime (4) < 99-sysctl.conf -> ../sysctl.conf (5),
    // and /etc/sysctl.conf is read last.
    EXPECT_EQ(p["net.ipv4.tcp_keepalive_probes"].value, "5");
    EXPECT_EQ(p["net.ipv4.tcp_keepalive_probes"].file, "/etc/sysctl.conf");
    EXPECT_EQ(p["kernel.pid_max"].value, "4194304");
    EXPECT_EQ(p["kernel.pid_max"].file, "/usr/lib/sysctl.d/50-default.conf");
    EXPECT_TRUE(p.count("net.ipv4.tcp_no_such_key"));
    EXPECT_TRUE(persisted_sysctls(fixture("does-not-exist")).empty());
}

TEST(DoctorParse, RuntimeSysctlsFromFakeProc) {
    auto f = read_netns_facts(fixture("tuned-host"));
    EXPECT_EQ(f.keepalive_time, 300);
    EXPECT_EQ(f.keepalive_intvl, 30);
    EXPECT_EQ(f.keepalive_probes, 5);
    EXPECT_TRUE(f.conntrack_loaded);
    EXPECT_EQ(f.ct_established, 600);
    EXPECT_EQ(f.ct_count, 900);
    EXPECT_EQ(f.ct_max, 1000);
    auto none = read_netns_facts(fixture("runtime-only"));
    EXPECT_FALSE(none.conntrack_loaded);
    EXPECT_FALSE(none.ct_count);
    EXPECT_EQ(read_sysctl_int(fixture("runtime-only"), "net.ipv4.tcp_keepalive_time"), 60);
    EXPECT_FALSE(read_sysctl_int(fixture("runtime-only"), "net.ipv4.nope"));
}

// Scenario 4 of the lab, on files: the firewall namespace runs conntrack with a
// 4 s established timeout and the default 7200 s keepalive time.
TEST(DoctorChecks, FirewallNamespaceKeepaliveNotBelowConntrackFails) {
    auto f = read_netns_facts(fixture("firewall-netns"));
    Context ctx;
    ctx.host_netns = false;
    ctx.netns_name = "lab-fw";
    ctx.netns = 4026532384u;
    auto checks = sysctl_checks(f, persisted_sysctls(fixture("firewall-netns")), ctx);
    const Check &t = find(checks, "tcp_keepalive_time");
    EXPECT_EQ(t.status, Status::fail);
    EXPECT_TRUE(has(t.observed, "7200 s")) << t.observed;
    EXPECT_TRUE(has(t.observed, "conntrack established timeout 4 s")) << t.observed;
    EXPECT_TRUE(has(t.expected, "shorter than 4 s")) << t.expected;
    // Half the timeout; an interval that still leaves room for one lost probe.
    EXPECT_TRUE(has(t.fix, "ip netns exec lab-fw sysctl -w net.ipv4.tcp_keepalive_time=2 "
                           "net.ipv4.tcp_keepalive_intvl=1"))
        << t.fix;
    // Not the host namespace: /etc/sysctl.d is the wrong place to persist.
    EXPECT_FALSE(has(t.fix, "/etc/sysctl.d/")) << t.fix;
    EXPECT_TRUE(has(t.fix, "where this namespace is created")) << t.fix;

    EXPECT_EQ(find(checks, "conntrack_tcp_timeout_established").status, Status::warn);
    EXPECT_EQ(find(checks, "conntrack_table").status, Status::ok);
    EXPECT_EQ(find(checks, "keepalive_sysctls_persisted").status, Status::ok);
    EXPECT_EQ(exit_code(checks), 1);

    // Without a name, the fix enters the namespace through a process in it.
    ctx.netns_name.clear();
    ctx.holder_pid = 4321;
    auto again = sysctl_checks(f, {}, ctx);
    EXPECT_TRUE(
        has(find(again, "tcp_keepalive_time").fix, "nsenter --net=/proc/4321/ns/net sysctl -w"));
}

TEST(DoctorChecks, TunedHostAgainstTheCloudDefaultAndAKnownTimeout) {
    auto f = read_netns_facts(fixture("tuned-host"));
    auto persisted = persisted_sysctls(fixture("tuned-host"));
    Context ctx; // host namespace, no --middlebox-timeout
    auto checks = sysctl_checks(f, persisted, ctx);

    // 300 s is below the local conntrack (600 s) but not below 240 s, the
    // shortest cloud default: a warning, with a fix that edits the file that
    // sets it today.
    const Check &t = find(checks, "tcp_keepalive_time");
    EXPECT_EQ(t.status, Status::warn);
    EXPECT_TRUE(has(t.fix, "sysctl -w net.ipv4.tcp_keepalive_time=120\n")) << t.fix;
    EXPECT_TRUE(has(t.fix, "sed -i 's|^[[:space:]]*-\\?net[./]ipv4[./]tcp_keepalive_time"
                           "[[:space:]]*=.*|net.ipv4.tcp_keepalive_time = 120|' "
                           "/etc/sysctl.d/10-net.conf"))
        << t.fix;
    EXPECT_EQ(find(checks, "tcp_keepalive_intvl").status, Status::ok);
    EXPECT_EQ(find(checks, "tcp_keepalive_probes").status, Status::ok);
    const Check &ct = find(checks, "conntrack_tcp_timeout_established");
    EXPECT_EQ(ct.status, Status::warn);
    EXPECT_TRUE(has(ct.fix, "echo 'net.netfilter.nf_conntrack_tcp_timeout_established = 7800' >> "
                            "/etc/sysctl.d/99-rstwatch-keepalive.conf"))
        << ct.fix;
    const Check &table = find(checks, "conntrack_table");
    EXPECT_EQ(table.status, Status::warn); // 90 %
    EXPECT_TRUE(has(table.observed, "900 of nf_conntrack_max 1000 (90%)")) << table.observed;
    EXPECT_TRUE(has(table.fix, "nf_conntrack_max=2000")) << table.fix;

    // The interval is set at runtime only: lost at reboot.
    const Check &p = find(checks, "keepalive_sysctls_persisted");
    EXPECT_EQ(p.status, Status::warn);
    EXPECT_TRUE(has(p.observed, "net.ipv4.tcp_keepalive_intvl = 30 set at runtime only"))
        << p.observed;
    EXPECT_TRUE(has(p.fix, "echo 'net.ipv4.tcp_keepalive_intvl = 30' >> "
                           "/etc/sysctl.d/99-rstwatch-keepalive.conf"))
        << p.fix;
    EXPECT_FALSE(has(p.fix, "tcp_keepalive_time")) << p.fix; // persisted as it runs
    EXPECT_EQ(exit_code(checks), 0);

    // Behind an AWS NAT Gateway (350 s): 300 s keepalive + 30 s interval is fine.
    ctx.middlebox_timeout = milliseconds(350'000);
    auto aws = sysctl_checks(f, persisted, ctx);
    EXPECT_EQ(find(aws, "tcp_keepalive_time").status, Status::ok);
    EXPECT_TRUE(has(find(aws, "tcp_keepalive_time").observed, "--middlebox-timeout"));
    EXPECT_EQ(find(aws, "tcp_keepalive_intvl").status, Status::ok);

    // 320 s: the 300 s keepalive time passes, but the retry of a lost first
    // probe would come at 330 s, too late.
    ctx.middlebox_timeout = milliseconds(320'000);
    auto tight = sysctl_checks(f, persisted, ctx);
    EXPECT_EQ(find(tight, "tcp_keepalive_time").status, Status::ok);
    EXPECT_EQ(find(tight, "tcp_keepalive_intvl").status, Status::warn);

    // Azure (240 s): fails.
    ctx.middlebox_timeout = milliseconds(240'000);
    auto azure = sysctl_checks(f, persisted, ctx);
    EXPECT_EQ(find(azure, "tcp_keepalive_time").status, Status::fail);
    EXPECT_EQ(exit_code(azure), 1);
}

TEST(DoctorChecks, RuntimeOnlyAndPersistedButNotApplied) {
    auto f = read_netns_facts(fixture("runtime-only"));
    auto checks = sysctl_checks(f, persisted_sysctls(fixture("runtime-only")), Context{});
    EXPECT_EQ(find(checks, "tcp_keepalive_time").status, Status::ok); // 60 s < 240 s
    EXPECT_EQ(find(checks, "conntrack_tcp_timeout_established").status, Status::ok);
    EXPECT_TRUE(has(find(checks, "conntrack_tcp_timeout_established").observed, "not loaded"));
    const Check &p = find(checks, "keepalive_sysctls_persisted");
    EXPECT_EQ(p.status, Status::warn);
    EXPECT_TRUE(has(p.observed, "net.ipv4.tcp_keepalive_time = 60 set at runtime only (reverts "
                                "to 7200 at reboot)"))
        << p.observed;
    EXPECT_TRUE(has(p.observed, "net.ipv4.tcp_keepalive_intvl = 75 at runtime but 15 in "
                                "/etc/sysctl.d/30-keepalive.conf:1"))
        << p.observed;
    EXPECT_TRUE(has(p.fix, "net.ipv4.tcp_keepalive_intvl = 75|' /etc/sysctl.d/30-keepalive.conf"))
        << p.fix;
    EXPECT_TRUE(has(p.fix, "sysctl --system")) << p.fix;
    EXPECT_EQ(exit_code(checks), 0);
}

TEST(DoctorChecks, ProbesAndUnreadableSysctls) {
    NetnsFacts f;
    f.keepalive_time = 60;
    f.keepalive_intvl = 10;
    f.keepalive_probes = 1;
    auto checks = sysctl_checks(f, {}, Context{});
    EXPECT_EQ(find(checks, "tcp_keepalive_probes").status, Status::warn);
    NetnsFacts empty;
    auto e = sysctl_checks(empty, {}, Context{});
    EXPECT_EQ(find(e, "tcp_keepalive_time").status, Status::warn);
    EXPECT_TRUE(has(find(e, "tcp_keepalive_time").observed, "not readable"));
}

TEST(DoctorChecks, ConnectionsWithKeepaliveOffPerProcess) {
    std::vector<rw_snapshot> snap;
    auto idle = fixtures::snapshot(100, "api", 1, 3); // keepalive off, idle 10 s
    idle.tm.idle_ms = 10'000;
    snap.push_back(idle);
    auto fresh = fixtures::snapshot(100, "api", 2, 4); // keepalive off, idle 1 s
    snap.push_back(fresh);
    auto ka = fixtures::snapshot(200, "worker", 3, 3); // keepalive 2 s
    ka.ka.enabled = 1;
    ka.ka.idle_s = 2;
    ka.flags |= RW_F_KA_EVER;
    ka.tm.idle_ms = 10'000;
    snap.push_back(ka);
    auto other_ns = fixtures::snapshot(300, "elsewhere", 4, 3);
    other_ns.tm.netns = 1;
    snap.push_back(other_ns);

    FilterOptions filter;
    filter.netns = 4026531840u;
    NetnsFacts f;
    f.keepalive_intvl = 75;
    TimeoutBound bound{std::chrono::seconds(4), "nf_conntrack_tcp_timeout_established"};
    auto audit = build_audit(snap, filter, milliseconds(4000), 0);
    Check c = connections_check(audit, bound, f, Context{});
    EXPECT_EQ(c.status, Status::fail); // one expired
    EXPECT_TRUE(has(c.observed, "2 of 3 connections have keepalive off: api (pid 100) 2"))
        << c.observed;
    EXPECT_TRUE(has(c.observed, "1 expired, 1 exposed")) << c.observed;
    ASSERT_EQ(c.processes.size(), 1u);
    EXPECT_EQ(c.processes[0].pid, 100u);
    EXPECT_EQ(c.processes[0].connections, 2u);
    EXPECT_EQ(c.processes[0].without_keepalive, 2u);
    EXPECT_EQ(c.processes[0].expired, 1u);
    EXPECT_TRUE(has(c.fix, "TCP_KEEPIDLE, 2)")) << c.fix;

    // No timeout known: keepalive off is a warning.
    auto plain = build_audit(snap, filter, std::nullopt, 0);
    Check w = connections_check(plain, std::nullopt, f, Context{});
    EXPECT_EQ(w.status, Status::warn);
    EXPECT_EQ(exit_code({w}), 0);

    Check s = connections_skipped("not running as root");
    EXPECT_TRUE(s.skipped);
    EXPECT_EQ(s.status, Status::warn);
    EXPECT_EQ(s.observed, "skipped: not running as root");
}

TEST(DoctorOutput, JsonRecordCarriesEveryField) {
    Check c;
    c.id = "tcp_keepalive_time";
    c.status = Status::fail;
    c.observed = "o";
    c.expected = "e";
    c.fix = "sysctl -w a=1\necho 'a = 1' >> f";
    std::string out;
    append_json(out, c, Scope{4026532384u, "lab-fw"}, 1'700'000'000'000'000'000, "h");
    ASSERT_EQ(out.back(), '\n');
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["v"], 1);
    EXPECT_EQ(j["event"], "doctor_check");
    EXPECT_EQ(j["ts"], "2023-11-14T22:13:20.000000000Z");
    EXPECT_EQ(j["host"], "h");
    EXPECT_EQ(j["check"], "tcp_keepalive_time");
    EXPECT_EQ(j["status"], "fail");
    EXPECT_EQ(j["observed"], "o");
    EXPECT_EQ(j["expected"], "e");
    EXPECT_EQ(j["fix"], "sysctl -w a=1\necho 'a = 1' >> f");
    EXPECT_EQ(j["netns"], 4026532384u);
    EXPECT_EQ(j["netns_name"], "lab-fw");
    EXPECT_EQ(j["skipped"], false);
    EXPECT_TRUE(j["processes"].is_null());

    Check ok;
    ok.id = "keepalive_off_connections";
    ok.processes.push_back({7, "api", 3, 2, 1, 0});
    out.clear();
    append_json(out, ok, Scope{1, ""}, 0, "h");
    j = nlohmann::json::parse(out);
    EXPECT_TRUE(j["fix"].is_null());
    EXPECT_TRUE(j["netns_name"].is_null());
    ASSERT_EQ(j["processes"].size(), 1u);
    EXPECT_EQ(j["processes"][0]["comm"], "api");
    EXPECT_EQ(j["processes"][0]["without_keepalive"], 2);
}

TEST(DoctorOutput, TextReportShowsFixesOfFailures) {
    Check bad;
    bad.id = "tcp_keepalive_time";
    bad.status = Status::fail;
    bad.observed = "7200 s";
    bad.expected = "shorter than 4 s";
    bad.fix = "sysctl -w net.ipv4.tcp_keepalive_time=2\necho x >> f";
    Check good;
    good.id = "tcp_keepalive_probes";
    good.observed = "9";
    std::string out;
    append_text(out, {bad, good}, Scope{42, "fw"}, "h", false);
    EXPECT_TRUE(has(out, "network namespace 42 (fw)")) << out;
    EXPECT_TRUE(has(out, "FAIL  tcp_keepalive_time: 7200 s\n")) << out;
    EXPECT_TRUE(has(out, "          sysctl -w net.ipv4.tcp_keepalive_time=2\n")) << out;
    EXPECT_TRUE(has(out, "OK    tcp_keepalive_probes: 9\n")) << out;
    EXPECT_TRUE(has(out, "1 fail, 0 warn, 1 ok")) << out;
    EXPECT_FALSE(has(out, "\033[")) << out;
}

// The whole command on a fixture root: exit code 1 on a failing check, and the
// privileged part says why it did not run.
TEST(DoctorCommand, FixtureRootEndToEnd) {
    auto cli = parse_cli({"doctor", "--root", fixture("firewall-netns")}, std::cout);
    ASSERT_TRUE(cli.command);
    testing::internal::CaptureStdout();
    int rc = run_doctor(std::get<DoctorOptions>(*cli.command));
    std::string out = testing::internal::GetCapturedStdout();
    EXPECT_EQ(rc, 1);
    std::vector<nlohmann::json> lines;
    std::size_t pos = 0;
    while (pos < out.size()) {
        auto nl = out.find('\n', pos);
        lines.push_back(nlohmann::json::parse(out.substr(pos, nl - pos)));
        pos = nl + 1;
    }
    ASSERT_EQ(lines.size(), 7u) << out;
    EXPECT_EQ(lines[0]["check"], "tcp_keepalive_time");
    EXPECT_EQ(lines[0]["status"], "fail");
    EXPECT_EQ(lines[0]["netns"], 4026532384u); // from the fixture's proc/self/ns/net
    EXPECT_EQ(lines[6]["check"], "keepalive_off_connections");
    EXPECT_EQ(lines[6]["skipped"], true);
    EXPECT_TRUE(has(lines[6]["observed"].get<std::string>(), "--root")) << lines[6];

    auto tuned = parse_cli({"doctor", "--root", fixture("tuned-host"), "--middlebox-timeout",
                            "aws-nat-gateway", "--format", "text"},
                           std::cout);
    testing::internal::CaptureStdout();
    rc = run_doctor(std::get<DoctorOptions>(*tuned.command));
    out = testing::internal::GetCapturedStdout();
    EXPECT_EQ(rc, 0) << out;
    EXPECT_TRUE(has(out, "OK    tcp_keepalive_time")) << out;
}

TEST(DoctorCli, BadValuesAreUsageErrors) {
    EXPECT_THROW(parse_cli({"doctor", "--root", "/nonexistent/dir"}, std::cout), UsageError);
    EXPECT_THROW(parse_cli({"doctor", "--middlebox-timeout", "forever"}, std::cout), UsageError);
    EXPECT_THROW(parse_cli({"doctor", "--format", "yaml"}, std::cout), UsageError);
    auto ok = parse_cli({"doctor", "--all-netns", "--middlebox-timeout", "4s"}, std::cout);
    ASSERT_TRUE(ok.command);
    auto &o = std::get<DoctorOptions>(*ok.command);
    EXPECT_TRUE(o.all_netns);
    EXPECT_EQ(o.middlebox_timeout, milliseconds(4000));
}
