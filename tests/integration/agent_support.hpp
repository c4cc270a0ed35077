// Support for the agent-mode integration tests: temp dirs, a minimal HTTP
// client, and real Prometheus / rsyslog / logrotate instances run with their
// own configs in a temp dir (never the system services).
#pragma once

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "harness.hpp"

namespace rwtest {

struct TempDir {
    std::string path;
    explicit TempDir(const std::string &tag) {
        std::string t = "/tmp/rwtest-" + tag + "-XXXXXX";
        path = mkdtemp(t.data());
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string operator/(const std::string &name) const { return path + "/" + name; }
};

inline void write_file(const std::string &path, const std::string &text) {
    std::ofstream(path, std::ios::trunc) << text;
}

// Polls `pred` every 50 ms until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()> &pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
}

struct HttpReply {
    int status = 0; // 0: no status line (connection dropped)
    std::string body;
    std::string raw;
};

// One request on a fresh loopback connection; reads until the server closes.
HttpReply http_request(int port, const std::string &request,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
inline HttpReply http_get(int port, const std::string &path) {
    return http_request(port, "GET " + path +
                                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

// A connected loopback socket for tests that misbehave on purpose.
class RawClient {
  public:
    explicit RawClient(int port);
    ~RawClient();
    bool send(const std::string &bytes); // false once the server has cut us off
    // Reads what the server sent until it closed the connection (true) or
    // the timeout passed (false).
    bool read_until_closed(std::chrono::milliseconds timeout, std::string &got);
    int fd() const { return fd_; }

  private:
    int fd_ = -1;
};

// The value of the sample `name{labels}` in a Prometheus text exposition, or
// -1 when absent. `labels` as rendered, e.g. direction="sent",verdict="no_socket".
double sample_value(const std::string &exposition, const std::string &name,
                    const std::string &labels = "");

// A Prometheus server of its own: temp config, storage and a loopback port.
class PrometheusServer {
  public:
    PrometheusServer(const TempDir &dir, int target_port);
    ~PrometheusServer();
    bool ready(std::chrono::milliseconds timeout);
    // Instant query through the HTTP API; nullopt when it has no sample.
    std::optional<double> query(const std::string &promql);
    int port() const { return port_; }
    std::string log() const { return child_ ? child_->stderr_text() : ""; }

  private:
    int port_;
    std::unique_ptr<Child> child_;
};

// rsyslogd in the foreground with its own config, pid file and work directory,
// reading `input` with imfile and writing every line to `shipped`.
class Rsyslog {
  public:
    Rsyslog(const TempDir &dir, const std::string &input, const std::string &shipped);
    ~Rsyslog();
    std::string log() const { return child_ ? child_->stderr_text() : ""; }

  private:
    std::unique_ptr<Child> child_;
};

} // namespace rwtest
