// `rstwatch report` rules: the clustering rule (clusters and non-clusters),
// the keepalive advice, the fix commands and the named presets.
#include <gtest/gtest.h>

#include "../report_fixtures.hpp"

using namespace rstwatch;
using namespace std::chrono_literals;
using rf::run;

namespace {

MiddleboxDeaths deaths(std::uint64_t at_or_above, std::uint64_t below, std::uint64_t min_ms) {
    MiddleboxDeaths m;
    m.known_idle = at_or_above + below;
    m.total = m.known_idle;
    m.at_or_above_floor = at_or_above;
    m.below_floor = below;
    m.min_idle_ms = at_or_above ? min_ms : UINT64_MAX;
    return m;
}

// Middlebox resets (received, origin middlebox) at these idle times, each on
// its own connection.
std::string middlebox_resets(std::initializer_list<std::int64_t> idles, const char *host = "h1") {
    std::string in;
    int port = 30000;
    for (auto ms : idles) {
        rf::Reset r;
        r.host = host;
        r.local.port = port++;
        r.idle_ms = ms;
        in += rf::reset(r);
    }
    return in;
}

const Finding *finding(const ReportResult &r, FindingKind k) {
    for (const auto &f : r.findings)
        if (f.kind == k) return &f;
    return nullptr;
}

} // namespace

TEST(ReportCluster, AllAboveTheFloorCluster) {
    auto c = evaluate_cluster(deaths(7, 0, 350'120));
    EXPECT_TRUE(c.clustered);
    EXPECT_EQ(c.bound_ms, 350'120u);
    EXPECT_DOUBLE_EQ(c.fraction, 1.0);
}

TEST(ReportCluster, EightyPercentIsTheBoundary) {
    EXPECT_TRUE(evaluate_cluster(deaths(4, 1, 5000)).clustered);  // 80 %
    EXPECT_FALSE(evaluate_cluster(deaths(3, 1, 5000)).clustered); // 75 %
    EXPECT_TRUE(evaluate_cluster(deaths(8, 2, 5000)).clustered);
    EXPECT_FALSE(evaluate_cluster(deaths(7, 3, 5000)).clustered);
}

TEST(ReportCluster, NothingAboveTheFloorOrNoDeathsIsNoCluster) {
    auto c = evaluate_cluster(deaths(0, 5, 0));
    EXPECT_FALSE(c.clustered);
    EXPECT_EQ(c.bound_ms, 0u);
    EXPECT_FALSE(evaluate_cluster(MiddleboxDeaths{}).clustered);
}

TEST(ReportCluster, EndToEndBoundIsTheSmallestIdleAmongMiddleboxDeaths) {
    std::string in = middlebox_resets({7012, 9000, 30'000});
    rf::Timeout t; // a silent drop, keepalive off: middlebox-caused too
    t.local.port = 41000;
    t.idle_ms = 6500;
    in += rf::timeout(t);
    rf::Timeout busy; // not_idle timeouts say nothing about an idle timeout
    busy.local.port = 41001;
    busy.idle_ms = 1500;
    busy.verdict = "not_idle";
    in += rf::timeout(busy);
    rf::Reset peer; // the peer application reset it: not the middlebox
    peer.local.port = 41002;
    peer.idle_ms = 2000;
    peer.origin = "peer";
    in += rf::reset(peer);

    auto r = run(in);
    const Finding *f = finding(r, FindingKind::middlebox_idle_timeout);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->cluster.deaths, 4u);
    EXPECT_EQ(f->cluster.bound_ms, 6500u);
    EXPECT_EQ(f->advice.idle_s, 3u);
    EXPECT_EQ(f->advice.interval_s, 1u);
    EXPECT_TRUE(f->presets.empty()); // every named middlebox waits longer than 6.5 s
    ASSERT_EQ(f->affected.size(), 1u);
    EXPECT_EQ(f->affected[0].keepalive, "disabled");
    EXPECT_EQ(f->affected[0].deaths, 4u);
    EXPECT_EQ(f->affected[0].fix_command,
              "rstwatch enforce --cgroup /system.slice/client.service --idle 3s");
    EXPECT_NE(f->summary.find("at most 6.5s"), std::string::npos) << f->summary;
}

TEST(ReportCluster, DeathsOfBusyConnectionsDoNotCluster) {
    auto r = run(middlebox_resets({5, 10, 20, 300, 7000}));
    EXPECT_EQ(finding(r, FindingKind::middlebox_idle_timeout), nullptr);
    const Finding *f = finding(r, FindingKind::deaths_not_clustered);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->cluster.deaths, 5u);
    EXPECT_EQ(f->cluster.below_floor, 4u);
    EXPECT_TRUE(f->commands.empty());
}

TEST(ReportCluster, AFewOutliersBelowTheFloorStillCluster) {
    auto r = run(middlebox_resets({40, 360'000, 351'500, 400'000, 2'000'000}));
    const Finding *f = finding(r, FindingKind::middlebox_idle_timeout);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->cluster.below_floor, 1u);
    EXPECT_EQ(f->cluster.bound_ms, 351'500u);
    // 351.5 s rules out GCP Cloud NAT, kube-proxy, conntrack; not AWS or Azure.
    std::vector<std::string> names;
    for (const auto &p : f->presets)
        names.emplace_back(p.name);
    EXPECT_EQ(names, (std::vector<std::string>{"aws-nat-gateway", "azure-load-balancer",
                                               "azure-nat-gateway"}));
    // Half the bound (175 s) is already below 80 % of Azure's 240 s (192 s).
    EXPECT_EQ(f->advice.idle_s, 175u);
    EXPECT_EQ(f->advice.interval_s, 17u);
}

TEST(ReportCluster, PerHostBoundsAreKept) {
    auto r = run(middlebox_resets({8000, 9000}, "a") + middlebox_resets({400'000}, "b"));
    ASSERT_EQ(r.data.hosts.size(), 2u);
    EXPECT_EQ(r.data.hosts[0].mb_min_idle_ms, 8000u);
    EXPECT_EQ(r.data.hosts[1].mb_min_idle_ms, 400'000u);
    const Finding *f = finding(r, FindingKind::middlebox_idle_timeout);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->cluster.bound_ms, 8000u);
    ASSERT_EQ(f->hosts.size(), 2u);
    EXPECT_EQ(r.data.hosts[f->hosts[0]].name, "a"); // most middlebox deaths first
}

TEST(ReportAdvice, HalfTheInferredBound) {
    auto a = recommend_keepalive(7012, std::nullopt);
    EXPECT_EQ(a.idle_s, 3u);
    EXPECT_EQ(a.interval_s, 1u);
    EXPECT_EQ(a.probes, 5u);
    EXPECT_NE(a.basis.find("half the inferred bound"), std::string::npos);
}

TEST(ReportAdvice, CappedByTheShortestPresetTheBoundAllows) {
    // 1000 s allows AWS (350 s) and Azure (240 s): 80 % of 240 s.
    auto a = recommend_keepalive(1'000'000, std::nullopt);
    EXPECT_EQ(a.idle_s, 192u);
    EXPECT_EQ(a.interval_s, 19u);
    EXPECT_NE(a.basis.find("azure"), std::string::npos) << a.basis;
}

TEST(ReportAdvice, ConfiguredTimeoutWithinTheBound) {
    // 80 % of 350 s; a retried probe at 280 + 28 s is still before 315 s.
    auto a = recommend_keepalive(400'000, 350s);
    EXPECT_EQ(a.idle_s, 280u);
    EXPECT_EQ(a.interval_s, 28u);
    EXPECT_NE(a.basis.find("configured"), std::string::npos);
    // Short timeouts: 80 % of 4 s is 3 s, but 3 + 1 s is past 90 % of 4 s.
    auto b = recommend_keepalive(7000, 4s);
    EXPECT_EQ(b.idle_s, 2u);
    EXPECT_EQ(b.interval_s, 1u);
}

TEST(ReportAdvice, ConfiguredTimeoutLongerThanTheBoundIsNotTrusted) {
    auto a = recommend_keepalive(7000, 350s);
    EXPECT_EQ(a.idle_s, 3u);
    auto r = run(middlebox_resets({7000}), 350s);
    const Finding *f = finding(r, FindingKind::middlebox_idle_timeout);
    ASSERT_NE(f, nullptr);
    ASSERT_TRUE(f->consistent_with_configured.has_value());
    EXPECT_FALSE(*f->consistent_with_configured);
    EXPECT_NE(f->summary.find("longer than the bound"), std::string::npos);
}

TEST(ReportAdvice, NeverBelowOneSecond) {
    auto a = recommend_keepalive(1000, std::nullopt);
    EXPECT_EQ(a.idle_s, 1u);
    EXPECT_EQ(a.interval_s, 1u);
}

TEST(ReportFix, SysctlCommandsApplyAndPersist) {
    KeepaliveAdvice a;
    a.idle_s = 175;
    a.interval_s = 17;
    a.probes = 5;
    auto cmds = sysctl_commands(a);
    ASSERT_EQ(cmds.size(), 3u);
    EXPECT_EQ(cmds[0].command, "sysctl -w net.ipv4.tcp_keepalive_time=175 "
                               "net.ipv4.tcp_keepalive_intvl=17 net.ipv4.tcp_keepalive_probes=5");
    EXPECT_EQ(cmds[1].command,
              "printf 'net.ipv4.tcp_keepalive_time = 175\\nnet.ipv4.tcp_keepalive_intvl = "
              "17\\nnet.ipv4.tcp_keepalive_probes = 5\\n' > /etc/sysctl.d/90-tcp-keepalive.conf && "
              "sysctl -p /etc/sysctl.d/90-tcp-keepalive.conf");
    EXPECT_NE(cmds[2].command.find("setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on)"),
              std::string::npos);
    EXPECT_NE(cmds[2].command.find("idle = 175"), std::string::npos);
}

TEST(ReportFix, EnforceCommandQuotesOrLooksUpTheCgroup) {
    KeepaliveAdvice a;
    a.idle_s = 3;
    EXPECT_EQ(enforce_command("/system.slice/app.service", 1, a),
              "rstwatch enforce --cgroup /system.slice/app.service --idle 3s");
    EXPECT_EQ(enforce_command("/odd path/it's", 1, a),
              "rstwatch enforce --cgroup '/odd path/it'\\''s' --idle 3s");
    EXPECT_EQ(enforce_command("", 4242, a),
              "rstwatch enforce --cgroup \"$(sed -n 's/^0:://p' /proc/4242/cgroup)\" --idle 3s");
}

TEST(ReportFix, TooSlowKeepaliveFromTheSysctlGetsTheSysctlInItsNamespace) {
    rf::Timeout t;
    t.keepalive = {true, 7200};
    t.verdict = "keepalive_too_slow";
    t.idle_ms = 400'000;
    auto r = run(rf::timeout(t));
    const Finding *f = finding(r, FindingKind::middlebox_idle_timeout);
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(f->affected.size(), 1u);
    EXPECT_EQ(f->affected[0].keepalive, "too_slow");
    EXPECT_EQ(f->affected[0].fix_command,
              "nsenter --target 4242 --net sysctl -w net.ipv4.tcp_keepalive_time=192 "
              "net.ipv4.tcp_keepalive_intvl=19 net.ipv4.tcp_keepalive_probes=5");
}

TEST(ReportText, HumanDurations) {
    EXPECT_EQ(human_ms(999), "999ms");
    EXPECT_EQ(human_ms(7012), "7.0s");
    EXPECT_EQ(human_ms(65'000), "65s");
    EXPECT_EQ(human_ms(350'000), "5m50s");
    EXPECT_EQ(human_ms(1'200'000), "20m");
    EXPECT_EQ(human_ms(86'400'000), "24h");
    EXPECT_EQ(human_ms(432'000'000), "5d");
}
