// rw_peer: makes the kernel do TCP things for the integration tests, and says
// what it did on stdout (one "key value..." line per step) so tests can assert
// exact pids, ports and errors. Every mode is bounded in time.
//
//   rw_peer refused PORT [--addr A] [--count N]
//       connect to a closed port (N times, as fast as possible); prints
//       "local_port N" and "errno E" for the first, "done N" at the end.
//   rw_peer churn --count N [--addr A]
//       N short connections to its own listener, each aborted by the client
//       (SO_LINGER 0, so no TIME_WAIT piles up); prints "listening P", "done N".
//   rw_peer server [--addr A] [--port P] [--abort-after-ms N] [--hold-ms N] [--name NAME]
//                 [--wait-line]
//       listen, print "listening PORT", accept one connection ("accepted PEERPORT"),
//       optionally wait for a line on stdin, then either abort it with
//       SO_LINGER {1,0} after N ms ("aborted") or hold it.
//   rw_peer client --port P [--addr A] [--keepalive] [--keepidle S] [--keepintvl S]
//                 [--keepcnt N] [--idle-ms N] [--write] [--hold-ms N] [--name NAME]
//                 [--wait-line]
//       connect ("connected LOCALPORT"), set options, optionally wait for a line on
//       stdin ("go"), sleep idle-ms, optionally write, then read until the
//       connection fails or hold-ms passes; prints "result OK|errno E".
//       --fill: before closing, fill the send buffers (the server does not
//       read), so the FIN queues behind unsent data and the closed socket
//       stays in FIN_WAIT1 with no fd; prints "filled BYTES".
//   rw_peer sockopts --port P [--addr A] [--name NAME]
//       connect, then a fixed sequence of keepalive setsockopt calls whose
//       results are printed as "sockopt OPTION LEVEL VALUE RESULT FD".
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

struct Args {
    std::string mode;
    std::string addr = "127.0.0.1";
    int port = 0;
    int abort_after_ms = -1;
    int hold_ms = 0;
    int idle_ms = 0;
    bool keepalive = false;
    int keepidle = 0, keepintvl = 0, keepcnt = 0;
    bool write_after = false;
    bool fill = false;
    bool wait_line = false;
    int count = 1;
    std::string name;
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

sockaddr_storage make_addr(const std::string &addr, int port, socklen_t &len) {
    sockaddr_storage ss{};
    auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    if (inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(uint16_t(port));
        len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(uint16_t(port));
        len = sizeof(*v6);
    } else {
        die("bad-address");
    }
    return ss;
}

int local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
}

// CLOCK_MONOTONIC in ms, printed with milestones so tests can compute exact
// idle periods however late they read the lines.
long long mono_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

int connect_to(const Args &a) {
    socklen_t len;
    sockaddr_storage ss = make_addr(a.addr, a.port, len);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    return fd;
}

int mode_refused(const Args &a) {
    socklen_t len;
    sockaddr_storage ss = make_addr(a.addr, a.port, len);
    for (int i = 0; i < a.count; ++i) {
        int fd = socket(ss.ss_family, SOCK_STREAM, 0);
        int rc = connect(fd, reinterpret_cast<sockaddr *>(&ss), len);
        int err = rc == 0 ? 0 : errno;
        if (i == 0) {
            say("local_port " + std::to_string(local_port(fd)));
            say("errno " + std::to_string(err));
        }
        close(fd);
    }
    say("done " + std::to_string(a.count));
    return 0;
}

int mode_churn(const Args &a) {
    socklen_t len;
    sockaddr_storage ss = make_addr(a.addr, 0, len);
    int lfd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (bind(lfd, reinterpret_cast<sockaddr *>(&ss), len) != 0 || listen(lfd, 128) != 0)
        die("listen");
    int port = local_port(lfd);
    say("listening " + std::to_string(port));
    sockaddr_storage dst = make_addr(a.addr, port, len);
    linger lg{1, 0};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int done = 0;
    for (; done < a.count && std::chrono::steady_clock::now() < deadline; ++done) {
        int c = socket(ss.ss_family, SOCK_STREAM, 0);
        if (connect(c, reinterpret_cast<sockaddr *>(&dst), len) != 0) die("connect");
        int s = accept(lfd, nullptr, nullptr);
        if (s < 0) die("accept");
        // The client aborts: an RST instead of a FIN, so no TIME_WAIT piles up.
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c);
        close(s);
    }
    close(lfd);
    say("done " + std::to_string(done));
    return 0;
}

int mode_server(const Args &a) {
    socklen_t len;
    sockaddr_storage ss = make_addr(a.addr, a.port, len);
    int lfd = socket(ss.ss_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, reinterpret_cast<sockaddr *>(&ss), len) != 0) die("bind");
    if (listen(lfd, 16) != 0) die("listen");
    say("listening " + std::to_string(local_port(lfd)));
    pollfd p{lfd, POLLIN, 0};
    if (poll(&p, 1, 20000) <= 0) die("accept-timeout");
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    int fd = accept(lfd, reinterpret_cast<sockaddr *>(&peer), &plen);
    if (fd < 0) die("accept");
    say("accepted " + std::to_string(ntohs(reinterpret_cast<sockaddr_in *>(&peer)->sin_port)));
    if (a.wait_line) {
        char buf[64];
        if (!std::fgets(buf, sizeof(buf), stdin)) die("stdin");
    }
    if (a.abort_after_ms >= 0) {
        sleep_ms(a.abort_after_ms);
        linger lg{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
        say("aborted " + std::to_string(mono_ms()));
    } else {
        sleep_ms(a.hold_ms);
        close(fd);
    }
    close(lfd);
    return 0;
}

void set_int(int fd, int level, int opt, int v) {
    if (setsockopt(fd, level, opt, &v, sizeof(v)) != 0) die("setsockopt");
}

int mode_client(const Args &a) {
    socklen_t len;
    sockaddr_storage ss = make_addr(a.addr, a.port, len);
    int fd = connect_to(a);
    if (connect(fd, reinterpret_cast<sockaddr *>(&ss), len) != 0) die("connect");
    if (a.keepalive) set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (a.keepidle) set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, a.keepidle);
    if (a.keepintvl) set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, a.keepintvl);
    if (a.keepcnt) set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, a.keepcnt);
    say("connected " + std::to_string(local_port(fd)) + " " + std::to_string(mono_ms()));
    if (a.wait_line) {
        char buf[64];
        if (!std::fgets(buf, sizeof(buf), stdin)) die("stdin");
    }
    sleep_ms(a.idle_ms);
    if (a.write_after) {
        const char msg[] = "hello";
        if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) < 0) {
            say("result errno " + std::to_string(errno));
            return 0;
        }
        say("wrote " + std::to_string(mono_ms()));
    }
    // Wait for the connection to fail (RST, timeout) or for hold-ms.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(a.hold_ms);
    for (;;) {
        int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                           deadline - std::chrono::steady_clock::now())
                           .count());
        if (left <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, left) <= 0) continue;
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            say("result errno " + std::to_string(errno));
            close(fd);
            return 0;
        }
        if (n == 0) {
            say("result eof");
            close(fd);
            return 0;
        }
    }
    say("result OK");
    if (a.fill) {
        // Bounded: loopback buffers hold a few MiB at most.
        static char chunk[65536];
        long total = 0;
        for (int i = 0; i < 1024; ++i) {
            ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n <= 0) break;
            total += n;
        }
        say("filled " + std::to_string(total));
    }
    close(fd);
    return 0;
}

int mode_sockopts(const Args &a) {
    socklen_t len;
    sockaddr_storage ss = make_addr(a.addr, a.port, len);
    int fd = connect_to(a);
    if (connect(fd, reinterpret_cast<sockaddr *>(&ss), len) != 0) die("connect");
    say("connected " + std::to_string(local_port(fd)));
    struct Call {
        const char *name;
        int fd;
        int level, opt, value;
        socklen_t optlen;
    };
    const int bad_fd = 987;
    close(bad_fd);
    const Call calls[] = {
        {"SO_KEEPALIVE", fd, SOL_SOCKET, SO_KEEPALIVE, 1, sizeof(int)},
        {"TCP_KEEPIDLE", fd, IPPROTO_TCP, TCP_KEEPIDLE, 30, sizeof(int)},
        {"TCP_KEEPINTVL", fd, IPPROTO_TCP, TCP_KEEPINTVL, 7, sizeof(int)},
        {"TCP_KEEPCNT", fd, IPPROTO_TCP, TCP_KEEPCNT, 4, sizeof(int)},
        {"TCP_USER_TIMEOUT", fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 15000, sizeof(int)},
        {"TCP_KEEPIDLE", fd, IPPROTO_TCP, TCP_KEEPIDLE, 0, sizeof(int)},    // -EINVAL
        {"SO_KEEPALIVE", bad_fd, SOL_SOCKET, SO_KEEPALIVE, 1, sizeof(int)}, // -EBADF
        {"SO_KEEPALIVE", fd, IPPROTO_TCP, SO_KEEPALIVE, 1, sizeof(int)},    // wrong level
    };
    for (const auto &c : calls) {
        int rc = setsockopt(c.fd, c.level, c.opt, &c.value, c.optlen);
        int result = rc == 0 ? 0 : -errno;
        say(std::string("sockopt ") + c.name + " " + std::to_string(c.level) + " " +
            std::to_string(c.value) + " " + std::to_string(result) + " " + std::to_string(c.fd));
    }
    sleep_ms(a.hold_ms);
    close(fd);
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: rw_peer refused|server|client|sockopts ...\n");
        return 2;
    }
    Args a;
    a.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
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
        else if (k == "--port")
            a.port = std::atoi(next().c_str());
        else if (k == "--abort-after-ms")
            a.abort_after_ms = std::atoi(next().c_str());
        else if (k == "--hold-ms")
            a.hold_ms = std::atoi(next().c_str());
        else if (k == "--idle-ms")
            a.idle_ms = std::atoi(next().c_str());
        else if (k == "--keepalive")
            a.keepalive = true;
        else if (k == "--keepidle")
            a.keepidle = std::atoi(next().c_str());
        else if (k == "--keepintvl")
            a.keepintvl = std::atoi(next().c_str());
        else if (k == "--keepcnt")
            a.keepcnt = std::atoi(next().c_str());
        else if (k == "--write")
            a.write_after = true;
        else if (k == "--fill")
            a.fill = true;
        else if (k == "--wait-line")
            a.wait_line = true;
        else if (k == "--name")
            a.name = next();
        else if (k == "--count")
            a.count = std::atoi(next().c_str());
        else if (a.mode == "refused" && a.port == 0)
            a.port = std::atoi(k.c_str());
        else {
            std::fprintf(stderr, "unknown argument %s\n", k.c_str());
            return 2;
        }
    }
    // A distinctive comm makes attribution checks exact.
    if (!a.name.empty()) prctl(PR_SET_NAME, a.name.c_str(), 0, 0, 0);
    if (a.mode == "refused") return mode_refused(a);
    if (a.mode == "server") return mode_server(a);
    if (a.mode == "client") return mode_client(a);
    if (a.mode == "sockopts") return mode_sockopts(a);
    if (a.mode == "churn") return mode_churn(a);
    std::fprintf(stderr, "unknown mode %s\n", a.mode.c_str());
    return 2;
}
