#include "agent/metrics_http.hpp"

#include "util/error.hpp"

#if RW_HAVE_HTTPLIB
#include <httplib.h>

#include <arpa/inet.h>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "util/fd.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace rstwatch {

namespace {

using Clock = std::chrono::steady_clock;

// Set while BoundedPool runs a job on the accepting thread because every
// worker and queue slot is taken: the connection is answered 503 and closed.
thread_local bool t_reject = false;
// When the connection the current job serves was accepted: its deadline
// counts from there, so time spent queued behind slow clients counts too.
thread_local Clock::time_point t_accepted;

enum class StreamFailure { none, too_large, timeout, stopped };

// The accepted socket as httplib sees it, with the connection's budget
// enforced underneath httplib's parser: one absolute deadline (httplib's own
// read timeout restarts with every byte, which a client trickling bytes can
// stretch forever), a byte limit on what it may read, and a stop fd that ends
// a request at once when the agent shuts down.
class GuardedStream final : public httplib::Stream {
  public:
    GuardedStream(int fd, int stop_fd, Clock::time_point deadline, std::size_t max_bytes)
        : fd_(fd), stop_fd_(stop_fd), deadline_(deadline), max_bytes_(max_bytes) {}

    bool is_readable() const override { return pos_ < len_ || wait(POLLIN); }
    bool is_writable() const override { return wait(POLLOUT); }

    ssize_t read(char *ptr, size_t size) override {
        if (pos_ == len_) {
            if (received_ >= max_bytes_) {
                failure_ = StreamFailure::too_large;
                return -1;
            }
            for (;;) {
                if (!wait(POLLIN)) return -1;
                ssize_t n =
                    ::recv(fd_, buf_, std::min(sizeof(buf_), max_bytes_ - received_), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (n <= 0) return n;
                received_ += std::size_t(n);
                pos_ = 0;
                len_ = std::size_t(n);
                break;
            }
        }
        std::size_t n = std::min(size, len_ - pos_);
        std::memcpy(ptr, buf_ + pos_, n);
        pos_ += n;
        return ssize_t(n);
    }

    ssize_t write(const char *ptr, size_t size) override {
        std::size_t done = 0;
        while (done < size) {
            if (!wait(POLLOUT)) return -1;
            ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n < 0) return -1;
            done += std::size_t(n);
        }
        return ssize_t(size);
    }

    void get_remote_ip_and_port(std::string &ip, int &port) const override {
        address_of(::getpeername, ip, port);
    }
    void get_local_ip_and_port(std::string &ip, int &port) const override {
        address_of(::getsockname, ip, port);
    }
    socket_t socket() const override { return fd_; }
    StreamFailure failure() const { return failure_; }

  private:
    // Waits for `events` on the socket until the deadline or a stop request.
    bool wait(short events) const {
        for (;;) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
            if (left.count() <= 0) {
                failure_ = StreamFailure::timeout;
                return false;
            }
            pollfd p[2] = {{fd_, events, 0}, {stop_fd_, POLLIN, 0}};
            int r = ::poll(p, 2, int(std::min<long long>(left.count(), 1000)));
            if (r < 0 && errno != EINTR) return false;
            if (r <= 0) continue;
            if (p[1].revents) {
                failure_ = StreamFailure::stopped;
                return false;
            }
            if (p[0].revents) return true; // ready, or HUP/ERR that the call will report
        }
    }

    template <class F> void address_of(F getname, std::string &ip, int &port) const {
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        ip.clear();
        port = -1;
        if (getname(fd_, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return;
        char text[INET6_ADDRSTRLEN] = {};
        if (ss.ss_family == AF_INET) {
            auto *a = reinterpret_cast<sockaddr_in *>(&ss);
            inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            auto *a = reinterpret_cast<sockaddr_in6 *>(&ss);
            inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
            port = ntohs(a->sin6_port);
        }
        ip = text;
    }

    int fd_;
    int stop_fd_;
    Clock::time_point deadline_;
    std::size_t max_bytes_;
    std::size_t received_ = 0;
    char buf_[4096];
    std::size_t pos_ = 0, len_ = 0;
    mutable StreamFailure failure_ = StreamFailure::none;
};

// httplib's ThreadPool queues without bound (every queued connection holds an
// fd); this one has a fixed number of slots.
class BoundedPool final : public httplib::TaskQueue {
  public:
    BoundedPool(unsigned threads, unsigned slots) : slots_(slots) {
        for (unsigned i = 0; i < threads; ++i)
            workers_.emplace_back([this] { work(); });
    }
    ~BoundedPool() override { shutdown(); }

    void enqueue(std::function<void()> fn) override {
        {
            std::lock_guard lock(mu_);
            if (jobs_.size() < slots_) {
                jobs_.push_back([fn = std::move(fn), accepted = Clock::now()] {
                    t_accepted = accepted;
                    fn();
                });
                cv_.notify_one();
                return;
            }
        }
        t_reject = true; // the job answers 503 and closes, without blocking
        fn();
        t_reject = false;
    }

    void shutdown() override {
        {
            std::lock_guard lock(mu_);
            if (down_) return;
            down_ = true;
        }
        cv_.notify_all();
        for (auto &t : workers_)
            t.join();
    }

  private:
    void work() {
        for (;;) {
            std::function<void()> fn;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [this] { return down_ || !jobs_.empty(); });
                if (jobs_.empty()) return; // down_ and drained
                fn = std::move(jobs_.front());
                jobs_.pop_front();
            }
            fn();
        }
    }

    const std::size_t slots_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> workers_;
    bool down_ = false;
};

} // namespace

struct MetricsServer::Impl {
    // The library's request parsing, routing and response writing over a
    // GuardedStream (process_request is the library's protected entry point).
    class Server final : public httplib::Server {
      public:
        explicit Server(Impl &impl) : impl_(impl) {}

      private:
        bool process_and_close_socket(socket_t sock) override {
            if (t_reject) {
                static constexpr char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
                ssize_t n = ::send(sock, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)n;
                impl_.registry.http().busy.fetch_add(1, std::memory_order_relaxed);
                ::close(sock);
                return false;
            }
            GuardedStream strm(sock, impl_.stop_fd.get(), t_accepted + impl_.limits.deadline,
                               impl_.limits.max_request_bytes);
            bool closed = true;
            bool ok =
                process_request(strm, /*close_connection=*/true, closed, [](httplib::Request &) {});
            auto &http = impl_.registry.http();
            if (strm.failure() == StreamFailure::too_large)
                http.too_large.fetch_add(1, std::memory_order_relaxed);
            else if (strm.failure() == StreamFailure::timeout)
                http.timeout.fetch_add(1, std::memory_order_relaxed);
            ::shutdown(sock, SHUT_RDWR);
            ::close(sock);
            return ok;
        }
        Impl &impl_;
    };

    Impl(MetricsRegistry &r, MetricsHttpLimits l)
        : registry(r), limits(l), stop_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), server(*this) {}

    MetricsRegistry &registry;
    MetricsHttpLimits limits;
    UniqueFd stop_fd;
    Server server;
    std::thread listener;
    int port = 0;
    bool stopped = false;
};

MetricsServer::MetricsServer(const ListenAddress &addr, MetricsRegistry &registry,
                             MetricsHttpLimits limits)
    : impl_(std::make_unique<Impl>(registry, limits)) {
    Impl &m = *impl_;
    if (!m.stop_fd) throw Error(Exit::runtime, std::string("eventfd: ") + std::strerror(errno));
    auto &svr = m.server;
    const MetricsHttpLimits lim = limits;
    svr.new_task_queue = [lim] { return new BoundedPool(lim.threads, lim.queue); };
    // SO_REUSEADDR only: the library's default adds SO_REUSEPORT, which would
    // let a second agent share the port and silently split the scrapes.
    svr.set_socket_options([](socket_t s) {
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    });
    svr.set_keep_alive_max_count(1);
    svr.set_payload_max_length(1024);
    MetricsRegistry *reg = &registry;
    svr.Get("/metrics", [reg](const httplib::Request &, httplib::Response &res) {
        res.set_content(render_prometheus(reg->read(), reg->http()),
                        "text/plain; version=0.0.4; charset=utf-8");
    });
    svr.set_error_handler([](const httplib::Request &, httplib::Response &res) {
        res.set_content(res.status == 404 ? "not found: rstwatch serves /metrics only\n"
                                          : "bad request\n",
                        "text/plain; charset=utf-8");
    });
    svr.set_logger([reg](const httplib::Request &, const httplib::Response &) {
        reg->http().requests.fetch_add(1, std::memory_order_relaxed);
    });

    const std::string shown =
        (addr.host.find(':') != std::string::npos ? "[" + addr.host + "]" : addr.host) + ":" +
        std::to_string(addr.port);
    errno = 0;
    if (!svr.bind_to_port(addr.host, addr.port)) {
        int err = errno;
        throw EnvironmentError("--metrics-listen " + shown + ": cannot listen there" +
                               (err ? std::string(": ") + std::strerror(err) : std::string()) +
                               " (is another process using the port, or is the address not "
                               "on this host?)");
    }
    m.port = addr.port;
    m.listener = std::thread([&svr] { svr.listen_after_bind(); });
    // httplib's stop() only works once the accept loop runs: wait for it.
    for (int i = 0; i < 1000 && !svr.is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!svr.is_running()) {
        m.listener.join();
        throw Error(Exit::runtime, "--metrics-listen " + shown + ": the HTTP server did not start");
    }
    log_debug("metrics on http://" + shown + "/metrics");
}

MetricsServer::~MetricsServer() {
    stop();
}

void MetricsServer::stop() {
    if (!impl_ || impl_->stopped) return;
    impl_->stopped = true;
    std::uint64_t one = 1;
    ssize_t n = ::write(impl_->stop_fd.get(), &one, sizeof(one)); // ends in-flight requests
    (void)n;
    // The constructor waited for the accept loop, so this closes the listening
    // socket, which ends the loop; the loop then joins the workers.
    if (impl_->server.is_running()) impl_->server.stop();
    if (impl_->listener.joinable()) impl_->listener.join();
}

bool MetricsServer::serving() const {
    return impl_ && !impl_->stopped && impl_->server.is_running();
}

std::uint16_t MetricsServer::port() const {
    return std::uint16_t(impl_->port);
}

} // namespace rstwatch

#else // static builds (RW_STATIC): Debian ships cpp-httplib as a shared library only

namespace rstwatch {

struct MetricsServer::Impl {};

MetricsServer::MetricsServer(const ListenAddress &, MetricsRegistry &, MetricsHttpLimits) {
    throw EnvironmentError("--metrics-listen: this rstwatch is a static build without the HTTP "
                           "library; use the regular (dynamically linked) build for metrics");
}
MetricsServer::~MetricsServer() = default;
void MetricsServer::stop() {}
bool MetricsServer::serving() const {
    return false;
}
std::uint16_t MetricsServer::port() const {
    return 0;
}

} // namespace rstwatch

#endif
