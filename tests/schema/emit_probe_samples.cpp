// Real `rstwatch probe` output for the schema test: a probe against a loopback
// listener (alive) and one against a closed loopback port (error, and the
// no_connection summary). No privileges needed; about 2 s.
#include <arpa/inet.h>
#include <atomic>
#include <iostream>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "probe/probe.hpp"
#include "util/error.hpp"

namespace {

int loopback_socket(int &port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&a), len) != 0) return -1;
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

} // namespace

int main() {
    using namespace std::chrono_literals;
    int port = 0;
    int ls = loopback_socket(port);
    if (ls < 0 || listen(ls, 16) != 0) {
        std::cerr << "emit_probe_samples: no loopback listener\n";
        return 1;
    }
    std::atomic<bool> stop{false};
    std::thread server([&] {
        std::vector<int> held;
        while (!stop) {
            pollfd p{ls, POLLIN, 0};
            if (poll(&p, 1, 50) == 1) held.push_back(accept(ls, nullptr, nullptr));
        }
        for (int fd : held)
            close(fd);
    });
    rstwatch::ProbeOptions o;
    o.target = "127.0.0.1:" + std::to_string(port);
    o.policy.ladder = {1000ms};
    o.policy.connections = 1;
    o.max_time = 30s;
    int rc = rstwatch::run_probe(o, std::cout);
    stop = true;
    server.join();
    close(ls);

    // Nothing listens here: connect fails, the summary says no_connection.
    int closed_port = 0;
    int unused = loopback_socket(closed_port);
    o.target = "127.0.0.1:" + std::to_string(closed_port);
    try {
        rstwatch::run_probe(o, std::cout);
        rc = 1;
    } catch (const rstwatch::Error &e) {
        if (e.code() != rstwatch::Exit::runtime) rc = 1;
    }
    close(unused);
    return rc;
}
