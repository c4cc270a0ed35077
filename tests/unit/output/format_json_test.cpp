// The JSON contract: exact field names, types and nulls per event type.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../fixtures.hpp"
#include "output/format.hpp"

using namespace rstwatch;
using nlohmann::json;

namespace {

json one_line(const std::string &out) {
    EXPECT_FALSE(out.empty());
    EXPECT_EQ(out.back(), '\n');
    EXPECT_EQ(out.find('\n'), out.size() - 1) << "more than one line";
    return json::parse(out);
}

} // namespace

TEST(FormatJson, ResetReceivedWithOwner) {
    auto f = make_json_formatter("host-a");
    rw_reset r = fixtures::reset();
    r.owner.cgroup_id = 77;
    r.tm.ct_timeout_s = 4;
    Diagnosis dx{Verdict::keepalive_disabled, "why"};
    CgroupInfo cg{"/system.slice/app.service", {}};
    std::string out;
    f->reset(out, ResetEvent{r, 1795550761123456789LL, "", dx, Origin::middlebox, &cg});
    json j = one_line(out);
    EXPECT_EQ(j["v"], 1);
    EXPECT_EQ(j["event"], "tcp_reset");
    EXPECT_EQ(j["ts"], "2026-11-24T20:06:01.123456789Z");
    EXPECT_EQ(j["host"], "host-a");
    EXPECT_EQ(j["direction"], "received");
    EXPECT_EQ(j["state"], "ESTABLISHED");
    EXPECT_EQ(j["family"], "ipv4");
    EXPECT_EQ(j["local"], (json{{"addr", "10.0.1.2"}, {"port", 40000}}));
    EXPECT_EQ(j["remote"], (json{{"addr", "10.0.2.2"}, {"port", 5000}}));
    EXPECT_EQ(j["netns"], 4026531840u);
    EXPECT_EQ(j["process"], (json{{"pid", 4242}, {"comm", "client"}, {"uid", 1000}}));
    EXPECT_EQ(j["owner_source"], "connect");
    EXPECT_EQ(j["cgroup"], "/system.slice/app.service");
    EXPECT_EQ(j["cgroup_id"], 77);
    EXPECT_TRUE(j["container_id"].is_null());
    EXPECT_EQ(j["keepalive"], (json{{"enabled", false},
                                    {"idle_s", 7200},
                                    {"interval_s", 75},
                                    {"probes", 9},
                                    {"source", "sysctl"},
                                    {"user_timeout_ms", nullptr}}));
    EXPECT_EQ(j["idle_ms"], 7000);
    EXPECT_EQ(j["since_last_send_ms"], 0);
    EXPECT_TRUE(j["age_ms"].is_null());
    EXPECT_TRUE(j["kernel_reason"].is_null());
    EXPECT_EQ(j["verdict"], "keepalive_disabled");
    EXPECT_EQ(j["explanation"], "why");
    EXPECT_EQ(j["origin"], "middlebox");
    EXPECT_EQ(j["conntrack_timeout_s"], 4);
}

TEST(FormatJson, ResetWithoutSocketHasNullOwnerAndTimers) {
    auto f = make_json_formatter("h");
    rw_reset r = fixtures::reset(RW_DIR_SENT);
    r.flags = RW_F_NO_SOCKET;
    r.owner = {};
    Diagnosis dx{Verdict::no_socket, "x"};
    std::string out;
    f->reset(out, ResetEvent{r, 0, "NO_SOCKET", dx, Origin::local, nullptr});
    json j = one_line(out);
    EXPECT_TRUE(j["process"].is_null());
    EXPECT_TRUE(j["owner_source"].is_null());
    EXPECT_TRUE(j["keepalive"].is_null());
    EXPECT_TRUE(j["idle_ms"].is_null());
    EXPECT_TRUE(j["since_last_send_ms"].is_null());
    EXPECT_TRUE(j["cgroup"].is_null());
    EXPECT_EQ(j["kernel_reason"], "NO_SOCKET");
    EXPECT_EQ(j["direction"], "sent");
}

TEST(FormatJson, KeepaliveFromSocketAndIpv6) {
    auto f = make_json_formatter("h");
    rw_reset r = fixtures::reset();
    r.ep.family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::5", r.ep.local_addr);
    inet_pton(AF_INET6, "2001:db8::6", r.ep.remote_addr);
    r.ka.enabled = 1;
    r.ka.idle_s = 30;
    r.ka.from_socket = RW_KA_IDLE_SOCKET;
    r.ka.user_timeout_ms = 15000;
    Diagnosis dx{Verdict::not_idle, ""};
    std::string out;
    f->reset(out, ResetEvent{r, 0, "", dx, Origin::unknown, nullptr});
    json j = one_line(out);
    EXPECT_EQ(j["family"], "ipv6");
    EXPECT_EQ(j["local"]["addr"], "2001:db8::5");
    EXPECT_EQ(j["keepalive"]["source"], "socket");
    EXPECT_EQ(j["keepalive"]["user_timeout_ms"], 15000);
}

TEST(FormatJson, TimeoutAndConnectionClosed) {
    auto f = make_json_formatter("h");
    rw_close c = fixtures::close_rec(RW_CAUSE_RETRANSMIT);
    c.opts = RW_OPT_SO_KEEPALIVE | RW_OPT_TCP_KEEPIDLE;
    c.resets_received = 1;
    Diagnosis dx{Verdict::keepalive_disabled, "e"};
    std::string out;
    f->timeout(out, TimeoutEvent{c, 0, dx, nullptr});
    json t = one_line(out);
    EXPECT_EQ(t["event"], "tcp_timeout");
    EXPECT_EQ(t["cause"], "retransmit");
    EXPECT_EQ(t["idle_ms"], 5000);
    EXPECT_EQ(t["unanswered_ms"], 3000);
    EXPECT_EQ(t["retransmits"], 3);
    EXPECT_EQ(t["error"], -110);
    EXPECT_EQ(t["verdict"], "keepalive_disabled");

    out.clear();
    f->connection_closed(out, ClosedEvent{c, 0, nullptr});
    json k = one_line(out);
    EXPECT_EQ(k["event"], "connection_closed");
    EXPECT_EQ(k["duration_ms"], 9000);
    EXPECT_EQ(k["keepalive_ever_enabled"], false);
    EXPECT_EQ(k["keepalive_options_set"], (json{"SO_KEEPALIVE", "TCP_KEEPIDLE"}));
    EXPECT_EQ(k["resets_received"], 1);
}

TEST(FormatJson, KeepaliveSetMisdirectedAndBadFd) {
    auto f = make_json_formatter("h");
    rw_sockopt s{};
    s.hdr.type = RW_REC_SOCKOPT;
    s.owner = fixtures::owner(7, "app", RW_OWNER_CURRENT);
    s.fd = 987;
    s.level = SOL_SOCKET;
    s.optname = 9;
    s.value = 1;
    s.result = -9;
    std::string out;
    f->keepalive_set(out, KeepaliveSetEvent{s, 0, nullptr});
    json j = one_line(out);
    EXPECT_EQ(j["option"], "SO_KEEPALIVE");
    EXPECT_EQ(j["level"], "SOL_SOCKET");
    EXPECT_EQ(j["result"], -9);
    EXPECT_EQ(j["misdirected"], false);
    EXPECT_TRUE(j["local"].is_null());
    EXPECT_TRUE(j["netns"].is_null());

    s.level = 6; // IPPROTO_TCP
    out.clear();
    f->keepalive_set(out, KeepaliveSetEvent{s, 0, nullptr});
    EXPECT_EQ(one_line(out)["misdirected"], true);
}

TEST(FormatJson, LostAndSummaries) {
    auto f = make_json_formatter("h");
    std::string out;
    f->lost(out, LostEvent{0, "ringbuf_full", 5, 12, {5, 0, 0, 0}});
    json l = one_line(out);
    EXPECT_EQ(l["lost"], 5);
    EXPECT_EQ(l["total"], 12);
    EXPECT_EQ(l["by_type"]["tcp_reset"], 5);

    out.clear();
    ProcessSummary p;
    p.pid = 9;
    p.comm = "svc";
    p.connections = 3;
    p.without_keepalive = 2;
    p.keepalive_options = RW_OPT_TCP_USER_TIMEOUT;
    f->process_summary(out, 0, p);
    json ps = one_line(out);
    EXPECT_EQ(ps["process"]["comm"], "svc");
    EXPECT_EQ(ps["without_keepalive"], 2);
    EXPECT_EQ(ps["keepalive_options_set"], (json{"TCP_USER_TIMEOUT"}));
}
