// rw_hold: holds N established loopback TCP connections, for audit
// benchmarks. The client ends live in a child process ("rw_hold_cli") and the
// accepted ends in the parent ("rw_hold_srv"), so each process needs only N
// descriptors: both stay under a per-process limit such as 20000 for
// N = 10000. Prints "listening PORT", then "established N" once all are up,
// and holds them until stdin closes or --hold-ms passes.
//
//   rw_hold --count N [--hold-ms MS] [--keepalive-every K]
//       --keepalive-every K: SO_KEEPALIVE on every K-th client socket.
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void die(const char *what) {
    std::printf("fatal %s %s\n", what, std::strerror(errno));
    std::fflush(stdout);
    std::exit(1);
}

// Waits until stdin closes (or a line arrives) or hold_ms passes.
void hold(long hold_ms, int fd) {
    pollfd p{fd, POLLIN, 0};
    for (long waited = 0; waited < hold_ms; waited += 200) {
        if (poll(&p, 1, 200) > 0) {
            char buf[64];
            if (read(fd, buf, sizeof(buf)) <= 0) return;
        }
    }
}

} // namespace

int main(int argc, char **argv) {
    long count = 0, hold_ms = 600000, ka_every = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--count")
            count = std::atol(argv[i + 1]);
        else if (k == "--hold-ms")
            hold_ms = std::atol(argv[i + 1]);
        else if (k == "--keepalive-every")
            ka_every = std::atol(argv[i + 1]);
    }
    if (count <= 0 || count > 28000) {
        std::fprintf(stderr, "usage: rw_hold --count N (1..28000) [--hold-ms MS]\n");
        return 2;
    }
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rlim_t(count + 16)) {
        std::printf("fatal descriptor limit %llu < %ld (ulimit -n / prlimit --nofile)\n",
                    (unsigned long long)rl.rlim_cur, count + 16);
        return 1;
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) die("bind");
    if (listen(lfd, 4096) != 0) die("listen");
    socklen_t len = sizeof(a);
    getsockname(lfd, reinterpret_cast<sockaddr *>(&a), &len);
    std::printf("listening %d\n", ntohs(a.sin_port));
    std::fflush(stdout);

    int ready[2], quit[2];
    if (pipe(ready) != 0 || pipe(quit) != 0) die("pipe");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        prctl(PR_SET_NAME, "rw_hold_cli", 0, 0, 0);
        close(lfd);
        std::vector<int> fds;
        for (long i = 0; i < count; ++i) {
            int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (c < 0) die("socket");
            if (ka_every && i % ka_every == 0) {
                int one = 1;
                setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
            }
            if (connect(c, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) die("connect");
            fds.push_back(c);
        }
        char ok = 1;
        if (write(ready[1], &ok, 1) != 1) die("ready");
        hold(hold_ms + 5000, quit[0]); // the parent closes `quit` when done
        _exit(0);
    }
    prctl(PR_SET_NAME, "rw_hold_srv", 0, 0, 0);
    std::vector<int> fds;
    for (long i = 0; i < count; ++i) {
        int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (s < 0) die("accept");
        fds.push_back(s);
    }
    char ok = 0;
    if (read(ready[0], &ok, 1) != 1 || ok != 1) die("client");
    std::printf("established %ld\n", count);
    std::fflush(stdout);
    hold(hold_ms, 0);
    close(quit[1]);
    waitpid(child, nullptr, 0);
    std::printf("done\n");
    return 0;
}
