#include <gtest/gtest.h>

#include "agent/reload.hpp"

using namespace rstwatch;
using namespace std::chrono_literals;

TEST(Reload, UserspaceSettingsAreApplied) {
    TraceOptions run, file;
    file.max_events_per_sec = 50;
    file.audit_interval = 60000ms;
    file.filter.verdict = Verdict::keepalive_disabled;
    file.middlebox_timeout = 350000ms;
    file.idle_threshold = 1000ms;
    file.metrics_top_comm = 3;
    ReloadPlan p = plan_reload(run, file);
    EXPECT_TRUE(p.need_restart.empty());
    EXPECT_EQ(p.applied, (std::vector<std::string>{"verdict", "middlebox-timeout", "idle-threshold",
                                                   "audit-interval", "max-events-per-sec",
                                                   "metrics-top-comm"}));
    EXPECT_EQ(p.next.max_events_per_sec, 50u);
    EXPECT_EQ(*p.next.audit_interval, 60000ms);
    EXPECT_EQ(*p.next.filter.verdict, Verdict::keepalive_disabled);
    EXPECT_EQ(p.next.metrics_top_comm, 3u);
}

TEST(Reload, KernelSideAndSetupChangesAreNamedNotApplied) {
    TraceOptions run, file;
    run.filter.port = 443;
    file.filter.port = 8443;
    file.filter.comm = "java";
    file.ringbuf_size = 16u << 20;
    file.events = RW_EMIT_RESET;
    file.out.path = "/var/log/x";
    file.metrics_listen = ListenAddress{"0.0.0.0", 9478};
    file.max_events_per_sec = 10; // safe: applied together with the report
    ReloadPlan p = plan_reload(run, file);
    EXPECT_EQ(p.need_restart, (std::vector<std::string>{"events", "comm", "port", "ringbuf-size",
                                                        "output", "metrics-listen"}));
    EXPECT_EQ(p.applied, (std::vector<std::string>{"max-events-per-sec"}));
    // The running values of what needs a restart stay.
    EXPECT_EQ(*p.next.filter.port, 443);
    EXPECT_TRUE(p.next.filter.comm.empty());
    EXPECT_EQ(p.next.ringbuf_size, run.ringbuf_size);
    EXPECT_TRUE(p.next.out.path.empty());
    EXPECT_FALSE(p.next.metrics_listen);
    std::string d = describe(p, "/etc/rstwatch/rstwatch.conf");
    EXPECT_NE(d.find("applied max-events-per-sec"), std::string::npos) << d;
    EXPECT_NE(d.find("NOT applied, they need a restart (running values kept): events, comm"),
              std::string::npos)
        << d;
}

TEST(Reload, NothingChanged) {
    TraceOptions a;
    ReloadPlan p = plan_reload(a, a);
    EXPECT_TRUE(p.applied.empty());
    EXPECT_TRUE(p.need_restart.empty());
    EXPECT_NE(describe(p, "f").find("no change to apply"), std::string::npos);
}
