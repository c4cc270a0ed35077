#include <gtest/gtest.h>
#include <regex>
#include <set>
#include <sstream>

#include "trace/metrics.hpp"

using namespace rstwatch;

namespace {

AuditProcess proc(const std::string &comm, std::uint64_t sockets, std::uint64_t no_ka) {
    AuditProcess p;
    p.comm = comm;
    p.sockets = sockets;
    p.without_keepalive = no_ka;
    return p;
}

MetricsRegistry::View sample_view() {
    MetricsRegistry::View v;
    v.build = {"0.1.0", "6.18.0", "cgroup", true, true, 1795556324.5};
    v.counters.resets[0][std::size_t(Verdict::no_socket)] = 7;
    v.counters.resets[1][std::size_t(Verdict::keepalive_disabled)] = 3;
    v.counters.timeouts[1][std::size_t(Verdict::keepalive_disabled)] = 2;
    v.counters.keepalive_set[0][0] = 4;
    v.counters.emitted[std::size_t(EventKind::tcp_reset)] = 9;
    v.counters.rate_limited[std::size_t(EventKind::tcp_reset)] = 1;
    v.counters.ringbuf_lost[2] = 5;
    v.audit.runs = 2;
    v.audit.by_comm = {{"java", 10, 8}, {"we\"ird\\na\nme", 1, 1}, {"other", 4, 0}};
    return v;
}

} // namespace

TEST(Metrics, LabelValuesAreEscapedAndValidUtf8) {
    EXPECT_EQ(prometheus_label_value("nginx"), "nginx");
    EXPECT_EQ(prometheus_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    EXPECT_EQ(prometheus_label_value("caf\xc3\xa9"), "caf\xc3\xa9"); // é kept
    EXPECT_EQ(prometheus_label_value("x\xff"
                                     "y"),
              "x\xef\xbf\xbdy");                                               // invalid byte
    EXPECT_EQ(prometheus_label_value("\xc3"), "\xef\xbf\xbd");                 // truncated
    EXPECT_EQ(prometheus_label_value("\xc0\x80"), "\xef\xbf\xbd\xef\xbf\xbd"); // overlong
    EXPECT_EQ(prometheus_label_value("\xed\xa0\x80"),                          // surrogate
              "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(Metrics, TopCommGaugesBoundCardinality) {
    std::vector<AuditProcess> ps = {proc("java", 10, 8), proc("java", 5, 5), proc("nginx", 50, 0),
                                    proc("redis", 3, 3), proc("psql", 2, 2), proc("a", 1, 0)};
    auto g = top_comm_gauges(ps, 2);
    ASSERT_EQ(g.size(), 3u);
    EXPECT_EQ(g[0], (CommGauge{"java", 15, 13})); // two processes, one series
    EXPECT_EQ(g[1], (CommGauge{"redis", 3, 3}));
    EXPECT_EQ(g[2], (CommGauge{"other", 53, 2}));  // nginx + psql + a
    EXPECT_EQ(top_comm_gauges(ps, 10).size(), 5u); // no "other" when all fit
    EXPECT_TRUE(top_comm_gauges({}, 3).empty());
}

TEST(Metrics, AProcessNamedOtherSharesTheOtherSeries) {
    auto g = top_comm_gauges({proc("other", 9, 9), proc("b", 1, 1), proc("c", 1, 0)}, 1);
    ASSERT_EQ(g.size(), 1u);
    EXPECT_EQ(g[0], (CommGauge{"other", 11, 10}));
}

TEST(Metrics, ExpositionHasHelpTypeAndExactSamples) {
    HttpCounters http;
    http.busy = 2;
    std::string text = render_prometheus(sample_view(), http);
    auto has = [&](const std::string &line) {
        return text.find("\n" + line + "\n") != std::string::npos;
    };
    EXPECT_TRUE(has(R"(rstwatch_resets_total{direction="sent",verdict="no_socket"} 7)"));
    EXPECT_TRUE(
        has(R"(rstwatch_resets_total{direction="received",verdict="keepalive_disabled"} 3)"));
    EXPECT_TRUE(has(R"(rstwatch_resets_total{direction="received",verdict="unknown"} 0)"));
    EXPECT_TRUE(
        has(R"(rstwatch_timeouts_total{cause="retransmit",verdict="keepalive_disabled"} 2)"));
    EXPECT_TRUE(
        has(R"(rstwatch_keepalive_options_set_total{option="SO_KEEPALIVE",result="ok"} 4)"));
    EXPECT_TRUE(has(R"(rstwatch_events_emitted_total{event="tcp_reset"} 9)"));
    EXPECT_TRUE(has(R"(rstwatch_events_rate_limited_total{event="tcp_reset"} 1)"));
    EXPECT_TRUE(has(R"(rstwatch_ringbuf_lost_total{record="connection"} 5)"));
    EXPECT_TRUE(has(R"(rstwatch_events_lost_total{reason="ringbuf_full"} 5)"));
    EXPECT_TRUE(has(R"(rstwatch_audit_connections_without_keepalive{comm="java"} 8)"));
    EXPECT_TRUE(has(R"(rstwatch_audit_connections{comm="we\"ird\\na\nme"} 1)"));
    EXPECT_TRUE(has(R"(rstwatch_metrics_rejected_total{reason="busy"} 2)"));
    EXPECT_TRUE(has(R"(rstwatch_start_time_seconds 1795556324.5)"));
    EXPECT_TRUE(has(
        R"(rstwatch_build_info{version="0.1.0",kernel="6.18.0",kernel_reason="true",setsockopt_hook="cgroup"} 1)"));

    // Every sample belongs to a family announced just before with HELP and
    // TYPE; counters end in _total; names carry the rstwatch_ prefix.
    std::istringstream in(text);
    std::string line, family, type;
    std::set<std::string> families;
    const std::regex sample(R"(^([a-z_]+)(\{[^}]*\})? [0-9.e+-]+$)");
    while (std::getline(in, line)) {
        if (line.rfind("# HELP ", 0) == 0) {
            family = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_TRUE(families.insert(family).second) << "family twice: " << family;
            EXPECT_EQ(family.rfind("rstwatch_", 0), 0u) << family;
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream t(line.substr(7));
            std::string name;
            t >> name >> type;
            EXPECT_EQ(name, family);
            if (type == "counter") EXPECT_EQ(family.substr(family.size() - 6), "_total") << family;
            continue;
        }
        std::smatch m;
        ASSERT_TRUE(std::regex_match(line, m, sample)) << line;
        EXPECT_EQ(m[1].str(), family) << line;
    }
}

TEST(Metrics, NoAuditGaugesBeforeTheFirstAudit) {
    MetricsRegistry::View v = sample_view();
    v.audit = {};
    v.build.keepalive_events = false;
    HttpCounters http;
    std::string text = render_prometheus(v, http);
    EXPECT_NE(text.find("rstwatch_audit_runs_total 0"), std::string::npos);
    EXPECT_EQ(text.find("rstwatch_audit_connections"), std::string::npos);
    // keepalive options are only counted with --events keepalive: absent, not 0
    EXPECT_EQ(text.find("rstwatch_keepalive_options_set_total"), std::string::npos);
}

TEST(Metrics, RegistryHandsOutCopies) {
    MetricsRegistry r;
    TraceCounters c;
    c.filtered_user = 3;
    r.publish(c);
    auto v = r.read();
    c.filtered_user = 4;
    EXPECT_EQ(v.counters.filtered_user, 3u);
    r.publish(c);
    EXPECT_EQ(r.read().counters.filtered_user, 4u);
}

TEST(Metrics, KeepaliveOptionIndex) {
    EXPECT_EQ(keepalive_option_index(1 /* SOL_SOCKET */, 9 /* SO_KEEPALIVE */), 0u);
    EXPECT_EQ(keepalive_option_index(6 /* IPPROTO_TCP */, 4), 1u);
    EXPECT_EQ(keepalive_option_index(6, 18), 4u);
    EXPECT_EQ(keepalive_option_index(6, 9), 0u); // misdirected SO_KEEPALIVE
    EXPECT_EQ(keepalive_option_index(6, 1), kKeepaliveOptions);
}
