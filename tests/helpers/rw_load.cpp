// rw_load: a steady, bounded mix of the traffic rstwatch traces, for soaks.
//
//   rw_load --seconds S --rate R [--addr A] [--name NAME]
//
// R times per second, from ONE process (so per-process kernel state stays one
// entry): a connection to its own listener on A, SO_KEEPALIVE and TCP_KEEPIDLE
// set on the client, one byte each way, then the client aborts (SO_LINGER 0:
// an RST each way in the kernel's books, no TIME_WAIT); plus one connect to a
// closed port on A (a refused connect: another RST). Paced by the clock, so a
// slow machine lowers the achieved rate instead of bunching up.
// Prints "listening PORT", "closed_port PORT", once a second "tick N", and at
// the end "done connections N refused M sockopts K".
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace {

[[noreturn]] void die(const char *what) {
    std::printf("fatal %s %d\n", what, errno);
    std::fflush(stdout);
    std::exit(1);
}

sockaddr_in addr_of(const std::string &ip, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) die("bad-address");
    return a;
}

int port_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    return ntohs(a.sin_port);
}

} // namespace

int main(int argc, char **argv) {
    int seconds = 30, rate = 100;
    std::string addr = "127.0.0.1", name;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--seconds")
            seconds = std::atoi(v.c_str());
        else if (k == "--rate")
            rate = std::atoi(v.c_str());
        else if (k == "--addr")
            addr = v;
        else if (k == "--name")
            name = v;
    }
    if (seconds <= 0 || seconds > 3600 || rate <= 0 || rate > 20000) {
        std::fprintf(stderr, "usage: rw_load --seconds 1..3600 --rate 1..20000 [--addr A]\n");
        return 2;
    }
    if (!name.empty()) prctl(PR_SET_NAME, name.c_str());

    sockaddr_in any = addr_of(addr, 0);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(lfd, reinterpret_cast<sockaddr *>(&any), sizeof(any)) != 0 || listen(lfd, 512) != 0)
        die("listen");
    const sockaddr_in dst = addr_of(addr, port_of(lfd));
    // A closed port: bound once to learn a free number, then released.
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(probe, reinterpret_cast<sockaddr *>(&any), sizeof(any)) != 0) die("bind");
    const sockaddr_in closed = addr_of(addr, port_of(probe));
    close(probe);
    std::printf("listening %d\nclosed_port %d\n", ntohs(dst.sin_port), ntohs(closed.sin_port));
    std::fflush(stdout);

    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto end = start + std::chrono::seconds(seconds);
    const auto period = std::chrono::nanoseconds(1'000'000'000 / rate);
    long conns = 0, refused = 0, sockopts = 0, tick = 0;
    auto next = start;
    const linger abort_close{1, 0};
    const int one = 1, idle = 60;
    char byte = 'x';
    while (clock::now() < end) {
        std::this_thread::sleep_until(next);
        next += period;
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0) die("socket");
        if (connect(c, reinterpret_cast<const sockaddr *>(&dst), sizeof(dst)) != 0) die("connect");
        int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (s < 0) die("accept");
        if (setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) == 0) ++sockopts;
        if (setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) == 0) ++sockopts;
        if (write(c, &byte, 1) != 1 || read(s, &byte, 1) != 1 || write(s, &byte, 1) != 1 ||
            read(c, &byte, 1) != 1)
            die("exchange");
        setsockopt(c, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
        close(c);
        close(s);
        ++conns;
        int r = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(r, reinterpret_cast<const sockaddr *>(&closed), sizeof(closed)) != 0 &&
            errno == ECONNREFUSED)
            ++refused;
        close(r);
        long t =
            long(std::chrono::duration_cast<std::chrono::seconds>(clock::now() - start).count());
        if (t > tick) {
            tick = t;
            std::printf("tick %ld\n", tick);
            std::fflush(stdout);
        }
    }
    close(lfd);
    std::printf("done connections %ld refused %ld sockopts %ld\n", conns, refused, sockopts);
    return 0;
}
