// Prints one line of every event type the formatter produces, from synthetic
// records, so the schema test can validate the formatter without privileges.
#include <iostream>

#include "../unit/fixtures.hpp"
#include "doctor/doctor.hpp"
#include "enforce/format.hpp"
#include "output/format.hpp"

using namespace rstwatch;

int main() {
    auto f = make_json_formatter("schema-host");
    std::string out;
    const std::int64_t ts = 1795550761123456789LL;

    SessionStart ss{ts,  "0.0.0",  "6.18.0", 42, {"reset", "timeout", "summary"}, "cgroup", true,
                    250, 8u << 20, 3,        12};
    f->session_start(out, ss);

    Diagnosis dx{Verdict::keepalive_disabled, "explanation"};
    rw_reset rx = fixtures::reset(RW_DIR_RECEIVED);
    rx.owner.cgroup_id = 1;
    CgroupInfo cg{"/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/"
                  "4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
                  {"4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
                   "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"}};
    f->reset(out, ResetEvent{rx, ts, "", dx, Origin::middlebox, &cg});
    rw_reset nosock = fixtures::reset(RW_DIR_SENT);
    nosock.flags = RW_F_NO_SOCKET;
    nosock.owner = {};
    Diagnosis ns{Verdict::no_socket, "no socket"};
    f->reset(out, ResetEvent{nosock, ts, "NO_SOCKET", ns, Origin::local, nullptr});

    rw_close to = fixtures::close_rec(RW_CAUSE_KEEPALIVE);
    f->timeout(out, TimeoutEvent{to, ts, dx, nullptr});
    rw_close cc = fixtures::close_rec();
    cc.opts = RW_OPT_SO_KEEPALIVE;
    f->connection_closed(out, ClosedEvent{cc, ts, nullptr});

    rw_sockopt so{};
    so.hdr.type = RW_REC_SOCKOPT;
    so.owner = fixtures::owner(7, "app", RW_OWNER_CURRENT);
    so.fd = 3;
    so.level = 6;
    so.optname = 4;
    so.value = 30;
    so.sock_id = 1;
    so.ep = rx.ep;
    so.netns = 4026531840u;
    f->keepalive_set(out, KeepaliveSetEvent{so, ts, nullptr});
    so.sock_id = 0;
    so.result = -9;
    f->keepalive_set(out, KeepaliveSetEvent{so, ts, nullptr});

    f->lost(out, LostEvent{ts, "ringbuf_full", 3, 3, {3, 0, 0, 0}});
    EventCounts suppressed{};
    suppressed[std::size_t(EventKind::tcp_reset)] = 4;
    suppressed[std::size_t(EventKind::tcp_timeout)] = 1;
    f->lost(out, LostEvent{ts, "rate_limit", 5, 9, {4, 0, 1, 0}, &suppressed});
    ProcessSummary ps;
    ps.pid = 7;
    ps.comm = "app";
    ps.connections = 2;
    ps.keepalive_options = RW_OPT_SO_KEEPALIVE | RW_OPT_TCP_KEEPIDLE;
    f->process_summary(out, ts, ps);
    f->session_summary(out, SessionSummary{ts, 1000, "signal", 5, 0, 0, 0, 0, 0, 0, 2, 1});

    rw_snapshot snap = fixtures::snapshot(7, "app", 1, 3);
    f->audit_socket(out, AuditSocket{snap, ts, nullptr, false, Risk::expired});
    f->audit_socket(out, AuditSocket{snap, ts, nullptr, true, std::nullopt});
    AuditProcess ap;
    ap.ts_ns = ts;
    ap.pid = 7;
    ap.comm = "app";
    ap.sockets = 1;
    ap.risk_counts = std::array<std::uint64_t, 3>{1, 0, 0};
    f->audit_process(out, ap);
    ap.risk_counts.reset();
    f->audit_process(out, ap);

    // rstwatch enforce.
    auto ef = make_enforce_formatter(Format::json, "schema-host");
    EnforceSettings es;
    es.cgroup_id = 5711;
    es.cgroup = "/system.slice/app.service";
    es.idle_s = 60;
    es.interval_s = 10;
    es.probes = 5;
    EnforceStart st{ts,
                    "0.0.0",
                    "6.18.0",
                    42,
                    es,
                    {"sockops", "setsockopt"},
                    3,
                    ExistingSummary{2, 1, 0},
                    "/sys/fs/bpf/rstwatch/enforce/cg5711",
                    12};
    ef->start(out, st);
    st.settings.interval_s.reset();
    st.settings.probes.reset();
    st.settings.dry_run = true;
    st.existing.reset();
    st.pinned.clear();
    ef->start(out, st);
    rw_enforce en{};
    en.hdr.type = RW_REC_ENFORCE;
    en.ep = rx.ep;
    en.owner = fixtures::owner(7, "app", RW_OWNER_CONNECT);
    en.owner.cgroup_id = 1;
    en.netns = 4026531840u;
    en.previous = rw_keepalive{7200, 75, 9, 0, 0, 0, 0};
    en.applied = rw_keepalive{60, 10, 5, 1, 0, 0, 0};
    en.trigger = RW_ENF_ACTIVE;
    ef->enforced(out, EnforcedEvent{en, ts, &cg});
    en.owner = {};
    en.ep = {};
    en.netns = 0;
    en.error = -22;
    en.trigger = RW_ENF_CLAMP;
    ef->enforced(out, EnforcedEvent{en, ts, nullptr});
    EnforceCounters ec;
    ec.v[RW_ENF_CNT_ACTIVE] = 2;
    ef->stop(out, EnforceStop{ts, 1000, "signal", ec, true, ""});
    ef->stop(out,
             EnforceStop{ts, 0, "installed", ec, false, "/sys/fs/bpf/rstwatch/enforce/cg5711"});
    ActiveEnforcement act;
    act.cgroup_id = 5711;
    act.programs = {"sockops"};
    act.link_ids = {12};
    act.pin_dir = "/sys/fs/bpf/rstwatch/enforce/cg5711";
    rw_enforce_config cfg{};
    cfg.cgroup_id = 5711;
    cfg.idle_s = 60;
    cfg.mode = RW_ENF_MODE_UNSET_ONLY;
    cfg.installer_pid = 42;
    cfg.started_ns = std::uint64_t(ts);
    act.config = cfg;
    act.counters = ec;
    ef->status(out, EnforceStatus{ts, act, es, false});
    ActiveEnforcement unknown;
    unknown.cgroup_id = 5712;
    unknown.programs = {"sockops", "setsockopt"};
    unknown.link_ids = {13, 14};
    ef->status(out, EnforceStatus{ts, unknown, std::nullopt, false});
    RemoveResult rr{"/sys/fs/bpf/rstwatch/enforce/cg5711", {"sockops", "setsockopt"}};
    ef->removed(out, EnforceRemoved{ts, "/system.slice/app.service", 5711, rr});
    ef->lost(out, ts, 3, 3);

    // rstwatch doctor writes its own records (userspace/doctor.cpp).
    doctor::Check bad;
    bad.id = "tcp_keepalive_time";
    bad.status = doctor::Status::fail;
    bad.observed = "net.ipv4.tcp_keepalive_time = 7200 s (2h)";
    bad.expected = "shorter than 4 s";
    bad.fix = "ip netns exec fw sysctl -w net.ipv4.tcp_keepalive_time=2";
    doctor::append_json(out, bad, {4026532384u, "fw"}, ts, "schema-host");
    doctor::Check conns;
    conns.id = "keepalive_off_connections";
    conns.status = doctor::Status::warn;
    conns.observed = "1 of 1 connections have keepalive off";
    conns.expected = "keepalive on";
    conns.fix = "enable SO_KEEPALIVE";
    conns.processes.push_back({7, "app", 1, 1, 0, 1});
    doctor::append_json(out, conns, {4026531840u, ""}, ts, "schema-host");
    doctor::Check skipped = doctor::connections_skipped("not running as root");
    doctor::append_json(out, skipped, {4026531840u, ""}, ts, "schema-host");
    std::cout << out;
    return 0;
}
