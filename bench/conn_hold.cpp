// rw_conn_hold: opens N established loopback TCP connections (both ends held,
// so 2N sockets) for the audit benchmark, prints "ready ..." and holds them
// until stdin closes or --hold seconds pass.
//
//   rw_conn_hold --connections N [--per-process M] [--hold SECONDS]
//
// Limits handled here:
// - file descriptors: a process holds at most M connections (2M fds; default
//   from the hard RLIMIT_NOFILE, which only CAP_SYS_RESOURCE may raise), so
//   large N is spread over worker processes; each raises its soft limit to
//   the hard one.
// - ephemeral ports (32768-60999 by default): worker w listens on its own
//   address 127.1.w.1, and a local port only has to be unique per
//   destination, so every worker has the whole port range to itself.
#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_util.hpp"

using namespace rwbench;

namespace {

const char *kUsage =
    "usage: rw_conn_hold --connections N [--per-process M] [--hold SECONDS (default 300)]\n";

// Opens n connections to a listener on 127.1.w.1; returns the fds.
std::vector<int> open_connections(int w, std::uint64_t n) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | (std::uint32_t(w) << 8) | 1u);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) die_errno("socket");
    if (bind(l, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) die_errno("bind 127.1.w.1");
    socklen_t len = sizeof(a);
    getsockname(l, reinterpret_cast<sockaddr *>(&a), &len);
    const int batch = 512;
    if (listen(l, batch) != 0) die_errno("listen");
    std::vector<int> fds;
    fds.reserve(2 * n);
    for (std::uint64_t done = 0; done < n;) {
        std::uint64_t k = std::min<std::uint64_t>(batch, n - done);
        // Loopback completes the handshake inside connect(); the accept queue
        // holds the batch until it is drained below.
        for (std::uint64_t i = 0; i < k; ++i) {
            int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (c < 0) die_errno("socket (fd limit?)");
            if (connect(c, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0)
                die_errno("connect (ephemeral ports exhausted?)");
            fds.push_back(c);
        }
        for (std::uint64_t i = 0; i < k; ++i) {
            int s = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
            if (s < 0) die_errno("accept");
            fds.push_back(s);
        }
        done += k;
    }
    close(l);
    return fds;
}

} // namespace

int main(int argc, char **argv) {
    Flags f(argc, argv, {"connections", "per-process", "hold"}, kUsage);
    const auto n = std::uint64_t(f.num("connections", 0));
    const double hold = f.num("hold", 300);
    if (n == 0 || n > 1'000'000 || hold <= 0 || hold > 3600)
        f.bad("need 0 < --connections <= 1000000 and 0 < --hold <= 3600");
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    const std::uint64_t hard = rl.rlim_max == RLIM_INFINITY ? 1'000'000 : rl.rlim_max;
    const auto per = std::uint64_t(f.num("per-process", double((hard - 64) / 2)));
    if (per == 0 || 2 * per + 16 > hard)
        f.bad("--per-process needs 2*M+16 fds <= the hard RLIMIT_NOFILE (" + std::to_string(hard) +
              ")");
    const std::uint64_t workers = (n + per - 1) / per;
    if (workers > 250) f.bad("too many worker processes; raise --per-process");

    signal(SIGPIPE, SIG_IGN);
    int ready[2], hold_pipe[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold_pipe, O_CLOEXEC) != 0) die_errno("pipe");
    const pid_t parent = getpid();
    std::vector<pid_t> pids;
    for (std::uint64_t w = 0; w < workers; ++w) {
        pid_t p = fork();
        if (p < 0) die_errno("fork");
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(1);
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            close(ready[0]);
            close(hold_pipe[1]);
            std::uint64_t mine = std::min(per, n - w * per);
            auto fds = open_connections(int(w), mine);
            char ok = 1;
            if (write(ready[1], &ok, 1) != 1) _exit(1);
            // Hold until the parent closes its end (or dies).
            char c;
            while (read(hold_pipe[0], &c, 1) > 0) {
            }
            _exit(0);
        }
        pids.push_back(p);
    }
    close(ready[1]);
    close(hold_pipe[0]);

    auto stop = [&](int code) {
        close(hold_pipe[1]);
        for (pid_t p : pids)
            kill(p, SIGTERM);
        for (pid_t p : pids)
            waitpid(p, nullptr, 0);
        std::exit(code);
    };

    const std::uint64_t t0 = mono_ns();
    for (std::uint64_t got = 0; got < workers;) {
        pollfd pfd{ready[0], POLLIN, 0};
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) die_errno("poll");
        char c;
        ssize_t r = read(ready[0], &c, 1);
        if (r == 1) {
            ++got;
        } else if (r == 0) {
            std::fprintf(stderr, "a worker failed before opening its connections\n");
            stop(1);
        }
        if (mono_ns() - t0 > 300'000'000'000ull) {
            std::fprintf(stderr, "timed out opening connections\n");
            stop(1);
        }
    }
    std::printf("ready connections %llu sockets %llu processes %llu open_s %.3f pids",
                (unsigned long long)n, (unsigned long long)(2 * n), (unsigned long long)workers,
                double(mono_ns() - t0) / 1e9);
    for (pid_t p : pids)
        std::printf(" %d", int(p));
    std::printf("\n");
    std::fflush(stdout);

    // Hold until stdin closes or the time is up.
    const std::uint64_t end = mono_ns() + std::uint64_t(hold * 1e9);
    for (;;) {
        std::uint64_t now = mono_ns();
        if (now >= end) break;
        pollfd pfd{0, POLLIN, 0};
        int r = poll(&pfd, 1, int(std::min<std::uint64_t>((end - now) / 1'000'000 + 1, 1000)));
        if (r > 0) {
            char buf[256];
            if (read(0, buf, sizeof(buf)) <= 0) break;
        }
    }
    stop(0);
}
