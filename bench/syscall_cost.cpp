// rw_syscall_cost: what a tracer costs the traced system. Times, in batches,
// an unrelated syscall (getppid), setsockopt(SO_KEEPALIVE) on a connected TCP
// socket, a connect to a closed port (one RST each) and a full connection
// (connect + accept + close), and prints one JSON line with the median and the
// fastest batch of each. The driver runs it under each tracer, interleaved.
//
//   rw_syscall_cost [--duration SECONDS per metric] [--netns 0|1]
#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "bench_util.hpp"

using namespace rwbench;

namespace {

const char *kUsage = "usage: rw_syscall_cost [--duration SECONDS per metric (default 0.5)]\n"
                     "                       [--netns 0|1]\n";

struct Stat {
    // Wall-clock ns per operation: median and fastest batch, and overall.
    double median = 0, min = 0, mean = 0;
    // This thread's CPU ns per operation (CLOCK_THREAD_CPUTIME_ID): time the
    // scheduler gave to other tasks on a busy machine is not in it.
    double cpu_median = 0, cpu_mean = 0;
    std::size_t batches = 0;
    std::uint64_t ops = 0;
};

std::uint64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000ull + std::uint64_t(ts.tv_nsec);
}

// Runs `batch` (which performs `per_batch` operations) until `seconds` pass;
// returns ns per operation over batches.
template <class F> Stat measure(double seconds, std::uint64_t per_batch, F batch) {
    std::vector<double> ns, cpu;
    const std::uint64_t t0 = mono_ns(), c0 = thread_cpu_ns();
    const std::uint64_t end = t0 + std::uint64_t(seconds * 1e9);
    std::uint64_t now = t0, cnow = c0;
    while (now < end || ns.size() < 3) {
        std::uint64_t a = mono_ns(), ca = thread_cpu_ns();
        batch();
        cnow = thread_cpu_ns();
        now = mono_ns();
        ns.push_back(double(now - a) / double(per_batch));
        cpu.push_back(double(cnow - ca) / double(per_batch));
        if (ns.size() >= 1'000'000) break;
    }
    Stat s;
    s.batches = ns.size();
    s.ops = per_batch * ns.size();
    s.mean = double(now - t0) / double(s.ops);
    s.cpu_mean = double(cnow - c0) / double(s.ops);
    std::sort(ns.begin(), ns.end());
    std::sort(cpu.begin(), cpu.end());
    s.median = ns[ns.size() / 2];
    s.min = ns.front();
    s.cpu_median = cpu[cpu.size() / 2];
    return s;
}

std::string json(const char *name, const Stat &s) {
    char buf[320];
    std::snprintf(buf, sizeof(buf),
                  "\"%s\":{\"median_ns\":%.1f,\"min_ns\":%.1f,\"mean_ns\":%.1f,"
                  "\"cpu_median_ns\":%.1f,\"cpu_mean_ns\":%.1f,\"batches\":%zu,\"ops\":%llu}",
                  name, s.median, s.min, s.mean, s.cpu_median, s.cpu_mean, s.batches,
                  (unsigned long long)s.ops);
    return buf;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

int tcp_socket() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die_errno("socket");
    return fd;
}

// A bound socket on an ephemeral loopback port; listening if asked.
int bound(sockaddr_in &a, bool listening) {
    int fd = tcp_socket();
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) die_errno("bind");
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    if (listening && listen(fd, 128) != 0) die_errno("listen");
    return fd;
}

} // namespace

int main(int argc, char **argv) {
    Flags f(argc, argv, {"duration", "netns"}, kUsage);
    const double secs = f.num("duration", 0.5);
    if (secs <= 0 || secs > 60) f.bad("--duration must be in (0, 60]");
    if (f.num("netns", 0) != 0) enter_private_netns();

    // getppid: nothing any tracer here looks at; only syscall tracepoints
    // (attached for any syscall) slow it down.
    Stat getppid_ns = measure(secs, 10000, [] {
        for (int i = 0; i < 10000; ++i)
            syscall(SYS_getppid);
    });

    // setsockopt(SO_KEEPALIVE) on an established connection, alternating 1/0
    // so every call really changes the socket.
    sockaddr_in la = loopback(0);
    int listener = bound(la, true);
    int c = tcp_socket();
    if (connect(c, reinterpret_cast<sockaddr *>(&la), sizeof(la)) != 0) die_errno("connect");
    int a = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (a < 0) die_errno("accept");
    int on = 0;
    Stat setsockopt_ns = measure(secs, 1000, [&] {
        for (int i = 0; i < 1000; ++i) {
            on ^= 1;
            if (setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0)
                die_errno("setsockopt");
        }
    });
    close(c);
    close(a);

    // A connect to a bound, non-listening port: one RST each way.
    sockaddr_in ca = loopback(0);
    int closed_port = bound(ca, false);
    std::uint64_t refused = 0;
    Stat closed_ns = measure(secs, 64, [&] {
        for (int i = 0; i < 64; ++i) {
            int s = tcp_socket();
            if (connect(s, reinterpret_cast<sockaddr *>(&ca), sizeof(ca)) != 0 &&
                errno == ECONNREFUSED)
                ++refused;
            close(s);
        }
    });
    close(closed_port);

    // A whole connection: handshake, accept, orderly close (lifecycle hooks).
    std::uint64_t conn_fail = 0;
    Stat conn_ns = measure(secs, 64, [&] {
        for (int i = 0; i < 64; ++i) {
            int s = tcp_socket();
            if (connect(s, reinterpret_cast<sockaddr *>(&la), sizeof(la)) != 0) {
                ++conn_fail;
                close(s);
                continue;
            }
            int t = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
            close(s);
            if (t >= 0) close(t);
        }
    });
    close(listener);

    std::printf("{%s,%s,%s,%s,\"closed_refused\":%llu,\"connect_failures\":%llu,"
                "\"netns\":%llu,\"pid\":%d}\n",
                json("getppid", getppid_ns).c_str(),
                json("setsockopt_keepalive", setsockopt_ns).c_str(),
                json("connect_closed_port", closed_ns).c_str(),
                json("connect_accept_close", conn_ns).c_str(), (unsigned long long)refused,
                (unsigned long long)conn_fail, (unsigned long long)netns_inode(), int(getpid()));
    return 0;
}
