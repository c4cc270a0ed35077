// rw_nobpf: runs a command with the bpf(2) system call forbidden.
//
//   rw_nobpf CMD [ARGS...]
//
// Installs a seccomp filter that kills the process (SIGSYS) on its first bpf(2)
// call, then execs CMD. A command that exits normally under it provably created
// no BPF map, program or link, not even for an instant: the tests use it to show
// that rejected command lines and missing environments never reach the loader.
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: rw_nobpf CMD [ARGS...]\n");
        return 2;
    }
    sock_filter filter[] = {
        // Another architecture's syscall numbers (x32, i386) would not match: kill.
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        std::fprintf(stderr, "rw_nobpf: installing the seccomp filter failed: %s\n",
                     std::strerror(errno));
        return 125;
    }
    execv(argv[1], argv + 1);
    std::fprintf(stderr, "rw_nobpf: exec %s: %s\n", argv[1], std::strerror(errno));
    return 127;
}
