// Privileged: `rstwatch verify` loads every program of every BPF object into
// this kernel. On the host (the CI kernel, updated under us) every program must
// load or be knowingly left out; the kernel matrix runs the same command in
// each guest (scripts/vm-matrix.sh).
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <unistd.h>

#include "harness.hpp"
#include "scoped_env.hpp"

using namespace rwtest;

namespace {

std::vector<json> run_verify(int *status) {
    Child c({rstwatch_bin(), "verify"});
    std::vector<json> lines;
    for (auto &l : c.read_all(60s)) {
        json j = json::parse(l, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
        if (!j.is_discarded()) lines.push_back(std::move(j));
    }
    *status = c.wait(60s);
    return lines;
}

} // namespace

TEST(Verify, EveryProgramOfEveryObjectLoadsOrIsKnowinglyLeftOut) {
    RW_REQUIRE_BPF();
    int status = -1;
    auto lines = run_verify(&status);
    EXPECT_EQ(status, 0);
    std::set<std::string> seen;
    for (const auto &p : of_type(lines, "bpf_program")) {
        const std::string id =
            p["object"].get<std::string>() + "/" + p["program"].get<std::string>();
        EXPECT_TRUE(seen.insert(id).second) << "listed twice: " << id;
        const std::string st = p["status"];
        EXPECT_TRUE(st == "loaded" || st == "left_out") << p.dump();
        if (st == "left_out") {
            EXPECT_FALSE(p["essential"].get<bool>()) << p.dump();
            EXPECT_FALSE(p["reason"].get<std::string>().empty()) << p.dump();
        }
    }
    // Every program the two objects have (bpf/*.bpf.c), exactly.
    const std::set<std::string> all = {
        "trace/rw_tcp_send_reset",      "trace/rw_tcp_receive_reset",
        "trace/rw_inet_sock_set_state", "trace/rw_cgroup_setsockopt",
        "trace/rw_iter_sockets",        "trace/rw_sys_enter_setsockopt",
        "trace/rw_sys_exit_setsockopt", "enforce/rw_enf_sockops",
        "enforce/rw_enf_clamp",         "enforce/rw_enf_owners",
        "enforce/rw_enf_seed",          "enforce/rw_enf_existing"};
    EXPECT_EQ(seen, all);
    // The JSON contract.
    const std::string path = "/tmp/rwtest-verify-" + std::to_string(getpid()) + ".ndjson";
    {
        std::ofstream out(path);
        for (auto &l : lines)
            out << l.dump() << "\n";
    }
    const std::string valid =
        sh("/usr/bin/python3 " RW_SOURCE_DIR
           "/scripts/validate-events.py --require bpf_program,verify_summary " +
           path + " 2>&1");
    unlink(path.c_str());
    EXPECT_NE(valid.find("valid: " + std::to_string(lines.size()) + " line(s)"), std::string::npos)
        << valid;
    auto sum = of_type(lines, "verify_summary");
    ASSERT_EQ(sum.size(), 1u);
    EXPECT_EQ(sum[0]["programs"], all.size());
    EXPECT_EQ(sum[0]["failed"], 0);
    EXPECT_EQ(sum[0]["loaded"].get<int>() + sum[0]["left_out"].get<int>(), int(all.size()));
    // The program 6.18.44's verifier refused before the two-pass owner scan.
    for (const auto &p : of_type(lines, "bpf_program"))
        if (p["program"] == "rw_enf_owners") EXPECT_EQ(p["status"], "loaded") << p.dump();
}

TEST(Verify, AnEssentialProgramRefusedIsAFailure) {
    RW_REQUIRE_BPF();
    int status = -1;
    std::vector<json> lines;
    {
        ScopedEnv refuse("RSTWATCH_TEST_REFUSE_PROGRAMS", "rw_tcp_receive_reset,rw_enf_existing");
        lines = run_verify(&status);
    }
    EXPECT_EQ(status, 1);
    std::map<std::string, std::string> st;
    for (const auto &p : of_type(lines, "bpf_program"))
        st[p["program"].get<std::string>()] = p["status"].get<std::string>();
    EXPECT_EQ(st["rw_tcp_receive_reset"], "failed");
    EXPECT_EQ(st["rw_enf_existing"], "left_out");
    EXPECT_EQ(st["rw_tcp_send_reset"], "loaded");
    EXPECT_EQ(st["rw_enf_sockops"], "loaded");
    auto sum = of_type(lines, "verify_summary");
    ASSERT_EQ(sum.size(), 1u);
    EXPECT_EQ(sum[0]["failed"], 1);
    EXPECT_EQ(sum[0]["left_out"], 1);
}

// trace without its start-up scan (refused, forced here) still traces resets,
// and says what it left out in session_start.
TEST(Verify, TraceLeavesOutARefusedIteratorAndStillTracesResets) {
    RW_REQUIRE_BPF();
    const int port = free_port();
    std::optional<Session> started;
    {
        ScopedEnv refuse("RSTWATCH_TEST_REFUSE_PROGRAMS", "rw_iter_sockets");
        started.emplace(std::vector<std::string>{"--port", std::to_string(port)});
    }
    Session &s = *started;
    const json left = s.start_event()["programs_left_out"];
    ASSERT_EQ(left.size(), 1u) << s.start_event().dump();
    EXPECT_EQ(left[0]["program"], "rw_iter_sockets");
    EXPECT_EQ(left[0]["section"], "iter/task_file");
    refused_burst(port, 3);
    auto events = s.stop();
    auto resets = of_type(events, "tcp_reset");
    EXPECT_GE(resets.size(), 3u);
    for (const auto &r : resets)
        EXPECT_EQ(r["remote"]["port"].get<int>() == port || r["local"]["port"].get<int>() == port,
                  true)
            << r.dump();
}
