#include "probe/probe_engine.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include "util/error.hpp"

namespace rstwatch::probe {

namespace {

std::string errno_name(int e) {
    switch (e) {
    case ECONNRESET:
        return "ECONNRESET";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case ECONNREFUSED:
        return "ECONNREFUSED";
    case EHOSTUNREACH:
        return "EHOSTUNREACH";
    case ENETUNREACH:
        return "ENETUNREACH";
    case EPIPE:
        return "EPIPE";
    case ECONNABORTED:
        return "ECONNABORTED";
    case EADDRNOTAVAIL:
        return "EADDRNOTAVAIL";
    default:
        return "errno " + std::to_string(e);
    }
}

[[noreturn]] void bad_target(const std::string &spec, const std::string &why) {
    throw UsageError("invalid target '" + spec + "': " + why +
                     " (expected HOST:PORT, such as 10.0.0.5:5432, db.example:5432 or "
                     "[2001:db8::5]:443)");
}

std::uint16_t port_of(const std::string &spec, const std::string &p) {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || n < 1 || n > 65535)
        bad_target(spec, "the port must be 1..65535");
    return std::uint16_t(n);
}

milliseconds since(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration_cast<milliseconds>(b - a);
}

} // namespace

Target resolve_target(const std::string &spec) {
    Target t;
    t.spec = spec;
    std::string port;
    if (!spec.empty() && spec.front() == '[') {
        auto close = spec.find("]:");
        if (close == std::string::npos) bad_target(spec, "an IPv6 address needs [ADDR]:PORT");
        t.host = spec.substr(1, close - 1);
        port = spec.substr(close + 2);
    } else {
        auto colon = spec.rfind(':');
        if (colon == std::string::npos || colon == 0) bad_target(spec, "no port");
        t.host = spec.substr(0, colon);
        if (t.host.find(':') != std::string::npos)
            bad_target(spec, "an IPv6 address needs brackets");
        port = spec.substr(colon + 1);
    }
    t.port = port_of(spec, port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo *res = nullptr;
    int rc = getaddrinfo(t.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res) bad_target(spec, std::string("cannot resolve: ") + gai_strerror(rc));
    std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
    t.addr_len = res->ai_addrlen;
    t.ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    char buf[INET6_ADDRSTRLEN] = {};
    if (t.ipv6)
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6 *>(&t.addr)->sin6_addr, buf, sizeof buf);
    else
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(&t.addr)->sin_addr, buf, sizeof buf);
    t.addr_text = buf;
    return t;
}

struct Engine::Conn {
    int fd = -1;
    milliseconds keepidle{0};
    bool connected = false;
    bool data = false;
    Clock::time_point started, idle_since;
    std::uint16_t local_port = 0;
    int checks = 0;
};

Engine::Engine(Target target, milliseconds interval, milliseconds connect_timeout)
    : target_(std::move(target)), interval_(interval), connect_timeout_(connect_timeout) {}

Engine::~Engine() {
    for (auto &c : conns_)
        if (c.fd >= 0) close(c.fd);
}

std::vector<milliseconds> Engine::active() const {
    std::vector<milliseconds> out;
    for (auto &c : conns_)
        out.push_back(c.keepidle);
    return out;
}

void Engine::start(const std::vector<milliseconds> &keepidles) {
    for (milliseconds t : keepidles) {
        Conn c;
        c.keepidle = t;
        c.started = c.idle_since = Clock::now();
        c.fd = socket(target_.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      IPPROTO_TCP);
        if (c.fd < 0)
            throw EnvironmentError(std::string("probe: cannot create a TCP socket: ") +
                                   std::strerror(errno));
        // Keepalive is the instrument: one probe after T of silence, and the
        // connection ends `interval` later if nobody answers it.
        const int one = 1, idle = int(t.count() / 1000), intvl = int(interval_.count() / 1000),
                  cnt = 1;
        const struct {
            int level, opt;
            const int *value;
            const char *name;
        } opts[] = {{SOL_SOCKET, SO_KEEPALIVE, &one, "SO_KEEPALIVE"},
                    {IPPROTO_TCP, TCP_KEEPIDLE, &idle, "TCP_KEEPIDLE"},
                    {IPPROTO_TCP, TCP_KEEPINTVL, &intvl, "TCP_KEEPINTVL"},
                    {IPPROTO_TCP, TCP_KEEPCNT, &cnt, "TCP_KEEPCNT"}};
        for (auto &o : opts)
            if (setsockopt(c.fd, o.level, o.opt, o.value, sizeof(int)) != 0) {
                int e = errno;
                close(c.fd);
                throw EnvironmentError(std::string("probe: the kernel refused ") + o.name + " = " +
                                       std::to_string(*o.value) + ": " + std::strerror(e) +
                                       " (probe needs TCP keepalive with per-socket settings)");
            }
        if (connect(c.fd, reinterpret_cast<const sockaddr *>(&target_.addr), target_.addr_len) == 0)
            c.connected = true;
        else if (errno != EINPROGRESS) {
            // Reported as an error result by the next wait().
            c.checks = -errno;
        }
        if (c.connected) c.idle_since = Clock::now();
        conns_.push_back(c);
    }
}

Result Engine::finish(Conn &c, Outcome o, Clock::time_point now, std::string error,
                      std::string detail) {
    Result r;
    r.keepidle = c.keepidle;
    r.outcome = o;
    r.ended_after = c.connected ? since(c.idle_since, now) : milliseconds(0);
    r.error = std::move(error);
    r.detail = std::move(detail);
    r.local_port = c.local_port;
    r.server_sent_data = c.data;
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    return r;
}

// One look at a connection; a result when it ended.
std::optional<Result> Engine::check(Conn &c, Clock::time_point now, bool readable) {
    if (c.checks < 0)
        return finish(c, Outcome::error, now, errno_name(-c.checks), "connect_failed");
    if (!c.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return finish(c, Outcome::error, now, errno_name(err), "connect_failed");
        if (!readable && since(c.started, now) >= connect_timeout_)
            return finish(c, Outcome::error, now, "ETIMEDOUT", "connect_timeout");
        tcp_info ti{};
        len = sizeof ti;
        if (getsockopt(c.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
            ti.tcpi_state != TCP_ESTABLISHED)
            return std::nullopt;
        c.connected = true;
        c.idle_since = now;
        sockaddr_storage local{};
        socklen_t llen = sizeof local;
        if (getsockname(c.fd, reinterpret_cast<sockaddr *>(&local), &llen) == 0)
            c.local_port = ntohs(local.ss_family == AF_INET6
                                     ? reinterpret_cast<sockaddr_in6 *>(&local)->sin6_port
                                     : reinterpret_cast<sockaddr_in *>(&local)->sin_port);
        return std::nullopt;
    }
    if (readable) {
        char buf[4096];
        for (int i = 0; i < 64; ++i) {
            ssize_t n = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                // A banner (SSH, SMTP): the silence, and the keepalive timer, start after it.
                c.data = true;
                c.idle_since = now;
                continue;
            }
            const milliseconds idle = since(c.idle_since, now);
            if (n == 0) {
                Result r = finish(c, Outcome::closed_by_server, now, "", "fin");
                r.evidence = idle;
                return r;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            const int e = errno;
            if (e == ECONNRESET) {
                // The kernel never sends a keepalive probe early: an RST before
                // T cannot answer ours, so the server (or its host) sent it.
                // Allow for our own clock reading the handshake a little late.
                if (idle + milliseconds(100) < c.keepidle) {
                    Result r =
                        finish(c, Outcome::closed_by_server, now, "ECONNRESET", "rst_before_probe");
                    r.evidence = idle;
                    return r;
                }
                Result r = finish(c, Outcome::reset, now, "ECONNRESET", "rst_answering_probe");
                r.evidence = idle;
                return r;
            }
            if (e == ETIMEDOUT) {
                Result r = finish(c, Outcome::drop, now, "ETIMEDOUT", "probe_unanswered");
                r.evidence = idle > interval_ ? idle - interval_ : milliseconds(0);
                return r;
            }
            return finish(c, Outcome::error, now, errno_name(e), "socket_error");
        }
    }
    // Alive once the probe's ACK came back: the last ACK arrived after T of
    // silence (the handshake's ACK is at idle 0).
    const milliseconds idle = since(c.idle_since, now);
    if (idle < c.keepidle) return std::nullopt;
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (getsockopt(c.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return std::nullopt;
    if (ti.tcpi_state != TCP_ESTABLISHED) return std::nullopt; // the error comes with POLLERR
    const milliseconds ack_at = idle - milliseconds(ti.tcpi_last_ack_recv);
    // jiffies (4 ms at HZ=250) and our reading of the handshake time: tolerance.
    if (ack_at + milliseconds(50) >= c.keepidle) {
        Result r = finish(c, Outcome::alive, now, "", "keepalive_ack");
        r.evidence = ack_at;
        return r;
    }
    // No ACK yet: the probe may leave up to T/8 late; after that and the
    // interval, an unanswered probe ends the connection with ETIMEDOUT.
    if (idle > c.keepidle + c.keepidle / 4 + interval_ + milliseconds(3000))
        return finish(c, Outcome::error, now, "", "no_probe_seen");
    return std::nullopt;
}

std::vector<Result> Engine::wait(Clock::time_point until) {
    std::vector<Result> out;
    std::vector<pollfd> pfds;
    for (;;) {
        auto now = Clock::now();
        // Due checks first (connect failures, probes that should be answered).
        Clock::time_point next = until;
        for (auto &c : conns_) {
            if (c.fd < 0 && c.checks >= 0) continue;
            Clock::time_point due;
            if (c.checks < 0)
                due = now;
            else if (!c.connected)
                due = c.started + connect_timeout_;
            else
                due = c.idle_since + c.keepidle + milliseconds(c.keepidle.count() / 64) +
                      milliseconds(20);
            if (due <= now) {
                if (auto r = check(c, now, false)) {
                    out.push_back(std::move(*r));
                } else if (c.connected) {
                    due = now + milliseconds(std::max<long long>(20, c.keepidle.count() / 64));
                } else {
                    due = now + milliseconds(20);
                }
            }
            if (c.fd >= 0 && due < next) next = due;
        }
        conns_.erase(
            std::remove_if(conns_.begin(), conns_.end(), [](const Conn &c) { return c.fd < 0; }),
            conns_.end());
        if (!out.empty() || conns_.empty() || now >= until) return out;

        pfds.clear();
        for (auto &c : conns_)
            pfds.push_back({c.fd, short(c.connected ? (POLLIN | POLLRDHUP) : POLLOUT), 0});
        auto wait_ms = std::chrono::duration_cast<milliseconds>(next - now).count();
        int n = poll(pfds.data(), pfds.size(), int(std::clamp<long long>(wait_ms, 0, 60000)));
        if (n < 0) {
            if (errno == EINTR) return out;
            throw Error(Exit::runtime, std::string("probe: poll failed: ") + std::strerror(errno));
        }
        now = Clock::now();
        for (std::size_t i = 0; i < pfds.size(); ++i) {
            if (!pfds[i].revents) continue;
            Conn &c = conns_[i];
            bool readable = c.connected;
            if (auto r = check(c, now, readable)) out.push_back(std::move(*r));
        }
        conns_.erase(
            std::remove_if(conns_.begin(), conns_.end(), [](const Conn &c) { return c.fd < 0; }),
            conns_.end());
        if (!out.empty()) return out;
    }
}

std::vector<Result> Engine::cancel(const std::vector<milliseconds> &keepidles,
                                   const std::string &why) {
    std::vector<Result> out;
    auto now = Clock::now();
    for (auto &c : conns_)
        if (std::find(keepidles.begin(), keepidles.end(), c.keepidle) != keepidles.end())
            out.push_back(finish(c, Outcome::cancelled, now, "", why));
    conns_.erase(
        std::remove_if(conns_.begin(), conns_.end(), [](const Conn &c) { return c.fd < 0; }),
        conns_.end());
    return out;
}

std::vector<Result> Engine::cancel_all(const std::string &why) {
    return cancel(active(), why);
}

} // namespace rstwatch::probe
