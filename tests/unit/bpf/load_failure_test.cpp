// parse_load_failure: which program the kernel refused and why, from libbpf's
// messages as the loader captures them (one entry per line).
#include <gtest/gtest.h>

#include "bpf/bpf_util.hpp"

using namespace rstwatch;

// Captured on the 6.18.44 host from the enforce object before the fix.
TEST(LoadFailure, NamesTheProgramAndTheVerifiersLastWord) {
    const std::vector<std::string> log = {
        "libbpf: prog 'rw_enf_owners': BPF program load failed: Permission denied",
        "libbpf: prog 'rw_enf_owners': -- BEGIN PROG LOAD LOG --",
        "0: R1=ctx() R10=fp0",
        "244: (85) call bpf_sk_storage_get#107",
        "R2 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_",
        "processed 250 insns (limit 1000000) max_states_per_insn 1 total_states 17 peak_states 17 "
        "mark_read 0",
        "-- END PROG LOAD LOG --",
        "libbpf: prog 'rw_enf_owners': failed to load: -13",
        "libbpf: failed to load object 'enforce_bpf'",
        "libbpf: failed to load BPF skeleton 'enforce_bpf': -13",
    };
    LoadFailure f = parse_load_failure(log);
    EXPECT_EQ(f.program, "rw_enf_owners");
    EXPECT_EQ(f.reason, "R2 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_");
}

// A refusal before the verifier ran (no log): libbpf's own line is the reason.
TEST(LoadFailure, WithoutAVerifierLogLibbpfsLineIsTheReason) {
    const std::vector<std::string> log = {
        "libbpf: prog 'rw_iter_sockets': BPF program load failed: Invalid argument",
        "libbpf: prog 'rw_iter_sockets': failed to load: -22",
        "libbpf: failed to load object 'trace_bpf'",
    };
    LoadFailure f = parse_load_failure(log);
    EXPECT_EQ(f.program, "rw_iter_sockets");
    EXPECT_EQ(f.reason, "prog 'rw_iter_sockets': BPF program load failed: Invalid argument");
}

// A map or BTF failure names no program: the loader must not guess one.
TEST(LoadFailure, NoProgramNamedMeansNone) {
    const std::vector<std::string> log = {
        "libbpf: map 'rw_events': failed to create: Cannot allocate memory(-12)",
        "libbpf: failed to load object 'trace_bpf'",
    };
    EXPECT_TRUE(parse_load_failure(log).program.empty());
    EXPECT_TRUE(parse_load_failure({}).program.empty());
}

#include "output/verify_format.hpp"

// rstwatch verify: a program refused by any configuration counts as refused;
// the exit status follows the essential ones only.
TEST(VerifyFormat, MergesConfigurationsAndCountsStatuses) {
    std::vector<VerifyRow> rows;
    ProgramStatus cg{
        "rw_cgroup_setsockopt", "cgroup/setsockopt", false, false, "tracking", "R1 invalid"};
    ProgramStatus rst{"rw_tcp_send_reset", "tp_btf/tcp_send_reset", true, true, "", ""};
    cg.loaded = true;
    merge_statuses(rows, "trace", {rst, cg});
    cg.loaded = false;
    merge_statuses(rows, "trace", {rst, cg});
    ProgramStatus sockops{"rw_enf_sockops", "sockops", true, false, "", "unknown func"};
    ProgramStatus owners{"rw_enf_owners", "iter/task_file", false, false, "owners", "R2"};
    merge_statuses(rows, "enforce", {sockops, owners});
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(verify_status(rows[0].st), "loaded");
    EXPECT_EQ(verify_status(rows[1].st), "left_out"); // the second configuration refused it
    EXPECT_EQ(rows[1].st.reason, "R1 invalid");
    EXPECT_EQ(verify_status(rows[2].st), "failed");
    EXPECT_EQ(verify_status(rows[3].st), "left_out");
    VerifyCounts c = count_statuses(rows);
    EXPECT_EQ(c.loaded, 1u);
    EXPECT_EQ(c.failed, 1u);
    EXPECT_EQ(c.left_out, 2u);

    std::string out;
    format_verify(out, rows, Format::json, "h", "6.18.44", 0);
    EXPECT_NE(out.find(R"("object":"enforce","program":"rw_enf_sockops","section":"sockops",)"
                       R"("essential":true,"status":"failed",)"
                       R"("lost":"the commands that need it cannot run","reason":"unknown func"})"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(R"("event":"verify_summary")"), std::string::npos);
    EXPECT_NE(out.find(R"("programs":4,"loaded":1,"left_out":2,"failed":1})"), std::string::npos)
        << out;
}
