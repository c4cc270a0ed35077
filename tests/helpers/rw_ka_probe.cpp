// rw_ka_probe: one TCP connection on loopback, both ends in this process, and
// what getsockopt says about their keepalive settings (the application's own
// view, which is what `rstwatch enforce` must change). Bounded in time.
//
//   rw_ka_probe [--addr A] [--name NAME] [--keepalive] [--keepidle S]
//               [--keepintvl S] [--keepcnt N] [--wait-line] [--late-keepidle S]
//               [--hold]
//
//   1. listen on A (127.0.0.1) port 0: "listening PORT"
//   2. client socket, options set BEFORE connect (--keepalive, --keepidle,
//      --keepintvl, --keepcnt), connect: "connected LOCALPORT"
//   3. accept: "accepted PEERPORT"; one byte each way, so that both ends have
//      finished establishing (the kernel's callbacks have run)
//   4. --wait-line: "waiting", then read a line on stdin
//   5. --late-keepidle S: setsockopt(TCP_KEEPIDLE, S) on the connected client:
//      "late_keepidle RESULT" (0 or errno)
//   6. "client ENABLED IDLE INTERVAL PROBES" and "server ..." from getsockopt
//   7. --hold: wait for a line (or EOF) on stdin before closing; else exit.
#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

struct Args {
    std::string addr = "127.0.0.1";
    std::string name;
    bool keepalive = false;
    int keepidle = 0, keepintvl = 0, keepcnt = 0, late_keepidle = 0;
    bool wait_line = false, hold = false;
};

[[noreturn]] void die(const char *what) {
    std::printf("fatal %s %d\n", what, errno);
    std::fflush(stdout);
    std::exit(1);
}

void say(const std::string &line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

int port_of(const sockaddr_storage &ss) {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port);
    return ntohs(reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_port);
}

int local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0) die("getsockname");
    return port_of(ss);
}

void set_int(int fd, int level, int opt, int v) {
    if (setsockopt(fd, level, opt, &v, sizeof(v)) != 0) die("setsockopt");
}

int get_int(int fd, int level, int opt) {
    int v = -1;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, level, opt, &v, &len) != 0) die("getsockopt");
    return v;
}

void report(const char *who, int fd) {
    say(std::string(who) + " " + std::to_string(get_int(fd, SOL_SOCKET, SO_KEEPALIVE)) + " " +
        std::to_string(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE)) + " " +
        std::to_string(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL)) + " " +
        std::to_string(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT)));
}

// A line (or EOF) on stdin, at most 60 s.
void wait_stdin() {
    pollfd p{0, POLLIN, 0};
    if (poll(&p, 1, 60000) <= 0) die("stdin-timeout");
    char buf[64];
    if (!std::fgets(buf, sizeof(buf), stdin) && !std::feof(stdin)) die("stdin");
}

void exchange(int a, int b) {
    char c = 'x';
    if (send(a, &c, 1, MSG_NOSIGNAL) != 1) die("send");
    pollfd p{b, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0 || recv(b, &c, 1, 0) != 1) die("recv");
}

} // namespace

int main(int argc, char **argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "missing value for %s\n", k.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (k == "--addr")
            a.addr = next();
        else if (k == "--name")
            a.name = next();
        else if (k == "--keepalive")
            a.keepalive = true;
        else if (k == "--keepidle")
            a.keepidle = std::atoi(next().c_str());
        else if (k == "--keepintvl")
            a.keepintvl = std::atoi(next().c_str());
        else if (k == "--keepcnt")
            a.keepcnt = std::atoi(next().c_str());
        else if (k == "--late-keepidle")
            a.late_keepidle = std::atoi(next().c_str());
        else if (k == "--wait-line")
            a.wait_line = true;
        else if (k == "--hold")
            a.hold = true;
        else {
            std::fprintf(stderr, "unknown argument %s\n", k.c_str());
            return 2;
        }
    }
    // A distinctive comm makes attribution checks exact.
    if (!a.name.empty()) prctl(PR_SET_NAME, a.name.c_str(), 0, 0, 0);

    sockaddr_storage ss{};
    socklen_t len = 0;
    auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    if (inet_pton(AF_INET, a.addr.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, a.addr.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        len = sizeof(*v6);
    } else {
        die("bad-address");
    }

    int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    if (bind(lfd, reinterpret_cast<sockaddr *>(&ss), len) != 0) die("bind");
    if (listen(lfd, 4) != 0) die("listen");
    const int port = local_port(lfd);
    say("listening " + std::to_string(port));
    if (ss.ss_family == AF_INET)
        v4->sin_port = htons(uint16_t(port));
    else
        v6->sin6_port = htons(uint16_t(port));

    int cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd < 0) die("socket");
    if (a.keepalive) set_int(cfd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (a.keepidle) set_int(cfd, IPPROTO_TCP, TCP_KEEPIDLE, a.keepidle);
    if (a.keepintvl) set_int(cfd, IPPROTO_TCP, TCP_KEEPINTVL, a.keepintvl);
    if (a.keepcnt) set_int(cfd, IPPROTO_TCP, TCP_KEEPCNT, a.keepcnt);
    if (connect(cfd, reinterpret_cast<sockaddr *>(&ss), len) != 0) die("connect");
    say("connected " + std::to_string(local_port(cfd)));

    pollfd p{lfd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) die("accept-timeout");
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    int sfd = accept4(lfd, reinterpret_cast<sockaddr *>(&peer), &plen, SOCK_CLOEXEC);
    if (sfd < 0) die("accept");
    say("accepted " + std::to_string(port_of(peer)));
    exchange(cfd, sfd);
    exchange(sfd, cfd);

    if (a.wait_line) {
        say("waiting");
        wait_stdin();
    }
    if (a.late_keepidle) {
        int rc =
            setsockopt(cfd, IPPROTO_TCP, TCP_KEEPIDLE, &a.late_keepidle, sizeof(a.late_keepidle));
        say("late_keepidle " + std::to_string(rc == 0 ? 0 : errno));
    }
    report("client", cfd);
    report("server", sfd);
    if (a.hold) wait_stdin();
    close(sfd);
    close(cfd);
    close(lfd);
    return 0;
}
