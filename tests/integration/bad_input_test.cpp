// Privileged, process level: every malformed command line of the shared table
// (tests/common/bad_cli_cases.hpp) makes the real binary exit 2 with one line
// on stderr naming the flag and the value, and it never calls bpf(2): each run
// is under rw_nobpf, a seccomp filter that kills the process on the first bpf
// call, so "exit 2" also proves that no map or program existed even briefly.
#include <filesystem>
#include <sys/mount.h>
#include <unistd.h>

#include "../common/bad_cli_cases.hpp"
#include "bpf_objects.hpp"
#include "harness.hpp"

using namespace rwtest;

namespace {

// A read-only tmpfs: a directory nobody, root included, can create files in.
struct ReadOnlyDir {
    std::string path;
    ReadOnlyDir() {
        char tmpl[] = "/tmp/rwtest-ro-XXXXXX";
        path = mkdtemp(tmpl);
        if (mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, "size=16k") != 0)
            ADD_FAILURE() << "mounting a read-only tmpfs failed: " << strerror(errno);
    }
    ~ReadOnlyDir() {
        umount2(path.c_str(), MNT_DETACH);
        rmdir(path.c_str());
    }
};

std::vector<std::string> lines_of(const std::string &text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l))
        out.push_back(l);
    return out;
}

} // namespace

TEST(BadInput, GuardKillsACommandThatLoadsBpf) {
    RW_REQUIRE_BPF();
    // The control: a valid command under the guard dies of SIGSYS, so the
    // table below cannot pass just because the guard does nothing.
    Child c({helper_bin("rw_nobpf"), rstwatch_bin(), "trace", "--duration", "2s"});
    EXPECT_EQ(c.wait(30s), 128 + SIGSYS) << c.stderr_text();
}

TEST(BadInput, EveryRowExits2WithOneLineAndNoBpfSyscall) {
    RW_REQUIRE_BPF();
    ReadOnlyDir ro;
    const BpfIds before = bpf_ids_live();
    std::vector<pid_t> pids;
    const auto cases = rwcases::bad_cli_cases({ro.path, rwcases::cgroup_v1_dir_or_proc()});
    for (const auto &c : cases) {
        SCOPED_TRACE(rwcases::to_string(c));
        std::vector<std::string> argv{helper_bin("rw_nobpf"), rstwatch_bin()};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        Child child(argv);
        pids.push_back(child.pid());
        auto out = child.read_all(10s);
        EXPECT_EQ(child.wait(10s), 2) << child.stderr_text();
        EXPECT_TRUE(out.empty()) << "stdout: " << out.front();
        auto err = lines_of(child.stderr_text());
        ASSERT_EQ(err.size(), 1u) << child.stderr_text();
        EXPECT_EQ(err[0].rfind("rstwatch: error: ", 0), 0u) << err[0];
        for (const auto &m : c.mentions)
            EXPECT_NE(err[0].find(m), std::string::npos) << "'" << m << "' not in: " << err[0];
    }
    // And afterwards no program exists that one of them could have left: the
    // only new rw_* programs (other engineers' instances, if any) belong to live
    // processes that are not ours.
    BpfIds now = bpf_ids_live(), fresh;
    for (unsigned id : now.progs)
        if (!before.progs.count(id)) fresh.progs.insert(id);
    for (const auto &name : bpf_prog_names(fresh)) {
        if (name.rfind("rw_", 0) != 0) continue;
        for (pid_t p : pids)
            EXPECT_NE(access(("/proc/" + std::to_string(p)).c_str(), F_OK), 0)
                << "a rejected run is still alive while " << name << " exists";
    }
    std::printf("[ info ] %zu malformed command lines, all exit 2 without a bpf(2) call\n",
                cases.size());
}
