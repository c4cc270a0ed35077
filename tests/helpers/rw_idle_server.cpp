// rw_idle_server: a TCP server for `rstwatch probe` tests. Accepts any number of
// connections and keeps them idle (never sends, reads and discards), so only
// keepalive probes cross the path; optionally ends each one itself after a
// delay, as servers with an idle timeout do. Bounded by --duration-ms.
//
//   rw_idle_server --addr A [--port P] [--duration-ms N]
//                  [--close-after-ms N | --abort-after-ms N]
//   prints "listening PORT", then "accepted PEERPORT" and "closed PEERPORT" /
//   "aborted PEERPORT" per connection.
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
    int fd;
    int peer_port;
    Clock::time_point accepted;
};

int peer_port_of(const sockaddr_storage &ss) {
    if (ss.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_port);
    return ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port);
}

} // namespace

int main(int argc, char **argv) {
    std::string addr = "127.0.0.1";
    int port = 0, duration_ms = 60000, close_after = -1, abort_after = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        const char *v = argv[i + 1];
        if (k == "--addr")
            addr = v;
        else if (k == "--port")
            port = std::atoi(v);
        else if (k == "--duration-ms")
            duration_ms = std::atoi(v);
        else if (k == "--close-after-ms")
            close_after = std::atoi(v);
        else if (k == "--abort-after-ms")
            abort_after = std::atoi(v);
        else {
            std::fprintf(stderr, "rw_idle_server: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    const bool v6 = addr.find(':') != std::string::npos;
    int ls = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
        auto *a6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        inet_pton(AF_INET6, addr.c_str(), &a6->sin6_addr);
        len = sizeof *a6;
    } else {
        auto *a4 = reinterpret_cast<sockaddr_in *>(&ss);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        inet_pton(AF_INET, addr.c_str(), &a4->sin_addr);
        len = sizeof *a4;
    }
    if (bind(ls, reinterpret_cast<sockaddr *>(&ss), len) != 0 || listen(ls, 128) != 0) {
        std::perror("rw_idle_server: bind/listen");
        return 1;
    }
    len = sizeof ss;
    getsockname(ls, reinterpret_cast<sockaddr *>(&ss), &len);
    std::printf("listening %d\n", peer_port_of(ss));
    std::fflush(stdout);

    std::vector<Conn> conns;
    const auto end = Clock::now() + std::chrono::milliseconds(duration_ms);
    const int after = close_after >= 0 ? close_after : abort_after;
    while (Clock::now() < end) {
        std::vector<pollfd> pfds{{ls, POLLIN, 0}};
        for (auto &c : conns)
            pfds.push_back({c.fd, POLLIN, 0});
        poll(pfds.data(), pfds.size(), 20);
        if (pfds[0].revents & POLLIN) {
            sockaddr_storage peer{};
            socklen_t plen = sizeof peer;
            int fd = accept4(ls, reinterpret_cast<sockaddr *>(&peer), &plen, SOCK_CLOEXEC);
            if (fd >= 0) {
                conns.push_back({fd, peer_port_of(peer), Clock::now()});
                std::printf("accepted %d\n", peer_port_of(peer));
                std::fflush(stdout);
            }
        }
        for (std::size_t i = 1; i < pfds.size(); ++i)
            if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                char buf[4096];
                ssize_t n = recv(pfds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n <= 0) { // the client went away
                    close(pfds[i].fd);
                    for (auto &c : conns)
                        if (c.fd == pfds[i].fd) c.fd = -1;
                }
            }
        for (auto &c : conns) {
            if (c.fd < 0 || after < 0) continue;
            if (Clock::now() - c.accepted < std::chrono::milliseconds(after)) continue;
            if (abort_after >= 0) {
                linger lg{1, 0}; // RST instead of FIN
                setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            close(c.fd);
            c.fd = -1;
            std::printf("%s %d\n", abort_after >= 0 ? "aborted" : "closed", c.peer_port);
            std::fflush(stdout);
        }
        std::erase_if(conns, [](const Conn &c) { return c.fd < 0; });
    }
    for (auto &c : conns)
        close(c.fd);
    return 0;
}
