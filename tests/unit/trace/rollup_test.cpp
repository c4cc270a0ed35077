#include <gtest/gtest.h>

#include "../fixtures.hpp"
#include "trace/rollup.hpp"

using namespace rstwatch;
using std::chrono::milliseconds;

TEST(ProcessSummary, ClosedPlusOpenWorstFirst) {
    rw_proc_stats a{};
    std::strcpy(a.comm, "quiet");
    a.connections_closed = 5;
    rw_proc_stats b{};
    std::strcpy(b.comm, "leaky");
    b.connections_closed = 2;
    b.closed_without_keepalive = 2;
    b.resets_received = 1;
    b.opt_set[4] = 1; // RW_OPT_TCP_USER_TIMEOUT

    std::vector<rw_snapshot> open;
    open.push_back(fixtures::snapshot(20, "leaky", 1, 3));
    open.push_back(fixtures::snapshot(20, "leaky", 1, 4)); // dup'd fd: same socket
    auto ka = fixtures::snapshot(10, "quiet", 2, 3);
    ka.ka.enabled = 1;
    ka.flags |= RW_F_KA_EVER;
    open.push_back(ka);
    auto listener = fixtures::snapshot(10, "quiet", 3, 4);
    listener.flags = RW_F_LISTENER;
    listener.ep.state = 10;
    open.push_back(listener);

    auto rows = build_process_summaries({{10, a}, {20, b}}, open, {}, {});
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].comm, "leaky");
    EXPECT_EQ(rows[0].connections, 3u);
    EXPECT_EQ(rows[0].open_connections, 1u);
    EXPECT_EQ(rows[0].without_keepalive, 3u);
    EXPECT_EQ(rows[0].resets_received, 1u);
    EXPECT_EQ(rows[0].keepalive_options, RW_OPT_TCP_USER_TIMEOUT);
    EXPECT_EQ(rows[1].comm, "quiet");
    EXPECT_EQ(rows[1].connections, 6u);
    EXPECT_EQ(rows[1].without_keepalive, 0u);
    EXPECT_EQ(rows[1].keepalive_options, RW_OPT_SO_KEEPALIVE);

    FilterOptions only;
    only.pid = 10;
    EXPECT_EQ(build_process_summaries({{10, a}, {20, b}}, open, {}, only).size(), 1u);
}

TEST(Summary, ConnectionsStillClosingCountForTheirOwner) {
    // Owner closed them; the FIN handshake had not finished at the end of the
    // session, so neither the kernel counters nor the fd snapshot have them.
    rw_proc_stats a{};
    std::strcpy(a.comm, "quiet");
    a.opt_set[0] = 1;
    rw_sock_info closing_no_ka{};
    closing_no_ka.owner.pid = 30;
    std::strcpy(closing_no_ka.owner.comm, "gone");
    closing_no_ka.flags = RW_F_ESTABLISHED;
    rw_sock_info closing_ka = closing_no_ka;
    closing_ka.owner.pid = 10;
    closing_ka.flags |= RW_F_KA_EVER;
    closing_ka.opts = RW_OPT_SO_KEEPALIVE | RW_OPT_TCP_KEEPIDLE;
    rw_sock_info handshake = closing_no_ka; // never established: not a connection
    handshake.flags = 0;

    auto rows = build_process_summaries({{10, a}}, {}, {closing_no_ka, closing_ka, handshake}, {});
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].pid, 30u);
    EXPECT_EQ(rows[0].comm, "gone");
    EXPECT_EQ(rows[0].connections, 1u);
    EXPECT_EQ(rows[0].without_keepalive, 1u);
    EXPECT_EQ(rows[0].open_connections, 0u);
    EXPECT_EQ(rows[1].pid, 10u);
    EXPECT_EQ(rows[1].connections, 1u);
    EXPECT_EQ(rows[1].without_keepalive, 0u);
    EXPECT_EQ(rows[1].keepalive_options, RW_OPT_SO_KEEPALIVE | RW_OPT_TCP_KEEPIDLE);

    FilterOptions only;
    only.comm = "quiet";
    EXPECT_EQ(build_process_summaries({{10, a}}, {}, {closing_no_ka, closing_ka}, only).size(), 1u);
}

TEST(Audit, SharedSocketsListedPerHolderAndMarked) {
    std::vector<rw_snapshot> snap = {fixtures::snapshot(1, "parent", 100, 3),
                                     fixtures::snapshot(2, "child", 100, 3),
                                     fixtures::snapshot(2, "child", 101, 4)};
    auto res = build_audit(snap, {}, std::nullopt, 0);
    ASSERT_EQ(res.sockets.size(), 3u);
    int shared = 0;
    for (auto &s : res.sockets)
        shared += s.shared;
    EXPECT_EQ(shared, 2);
    ASSERT_EQ(res.processes.size(), 2u);
    EXPECT_EQ(res.processes[0].comm, "child"); // more sockets without keepalive
    EXPECT_EQ(res.processes[0].sockets, 2u);
    EXPECT_FALSE(res.sockets[0].risk.has_value());
}

TEST(Audit, RiskAgainstMiddleboxTimeout) {
    auto expired = fixtures::snapshot(1, "a", 1, 3);
    expired.tm.idle_ms = 10'000;
    auto exposed = fixtures::snapshot(1, "a", 2, 4);
    exposed.tm.idle_ms = 1000;
    auto prot = fixtures::snapshot(1, "a", 3, 5);
    prot.ka.enabled = 1;
    prot.ka.idle_s = 2;
    prot.tm.idle_ms = 10'000;
    auto slow = fixtures::snapshot(1, "a", 4, 6);
    slow.ka.enabled = 1;
    slow.ka.idle_s = 7200;
    slow.tm.idle_ms = 10'000;
    const milliseconds t(4000);
    EXPECT_EQ(audit_risk(expired, t), Risk::expired);
    EXPECT_EQ(audit_risk(exposed, t), Risk::exposed);
    EXPECT_EQ(audit_risk(prot, t), Risk::protected_);
    EXPECT_EQ(audit_risk(slow, t), Risk::expired); // keepalive on but slower than the box

    auto res = build_audit({exposed, prot, expired, slow}, {}, t, 0);
    ASSERT_EQ(res.processes.size(), 1u);
    EXPECT_EQ((*res.processes[0].risk_counts), (std::array<std::uint64_t, 3>{2, 1, 1}));
    EXPECT_EQ(*res.sockets.front().risk, Risk::expired);
    EXPECT_EQ(*res.sockets.back().risk, Risk::protected_);
}

TEST(Audit, FiltersByPortAndMinIdle) {
    auto a = fixtures::snapshot(1, "a", 1, 3);
    a.tm.idle_ms = 500;
    auto b = fixtures::snapshot(1, "a", 2, 4);
    b.tm.idle_ms = 5000;
    FilterOptions f;
    f.min_idle = milliseconds(1000);
    EXPECT_EQ(build_audit({a, b}, f, std::nullopt, 0).sockets.size(), 1u);
    FilterOptions p;
    p.port = 8080;
    EXPECT_EQ(build_audit({a, b}, p, std::nullopt, 0).sockets.size(), 2u);
    p.port = 9;
    EXPECT_EQ(build_audit({a, b}, p, std::nullopt, 0).sockets.size(), 0u);
}
