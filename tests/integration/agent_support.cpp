#include "agent_support.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

namespace rwtest {

namespace {

int connect_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

std::string read_until_close(int fd, std::chrono::milliseconds timeout, bool *closed = nullptr) {
    std::string out;
    if (closed) *closed = false;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, int(left.count())) <= 0) break;
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) { // closed (or reset)
            if (closed) *closed = true;
            break;
        }
        out.append(buf, std::size_t(n));
    }
    return out;
}

std::string url_encode(const std::string &s) {
    std::string out;
    char hex[4];
    for (unsigned char c : s) {
        if (isalnum(c) || c == '_' || c == '-' || c == '.') {
            out += char(c);
        } else {
            std::snprintf(hex, sizeof(hex), "%%%02X", c);
            out += hex;
        }
    }
    return out;
}

} // namespace

HttpReply http_request(int port, const std::string &request, std::chrono::milliseconds timeout) {
    HttpReply r;
    int fd = connect_loopback(port);
    if (fd < 0) return r;
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    r.raw = read_until_close(fd, timeout);
    close(fd);
    if (r.raw.rfind("HTTP/1.", 0) == 0 && r.raw.size() > 12)
        r.status = std::stoi(r.raw.substr(9, 3));
    auto body = r.raw.find("\r\n\r\n");
    if (body != std::string::npos) r.body = r.raw.substr(body + 4);
    return r;
}

RawClient::RawClient(int port) : fd_(connect_loopback(port)) {}

RawClient::~RawClient() {
    if (fd_ >= 0) close(fd_);
}

bool RawClient::send(const std::string &bytes) {
    return fd_ >= 0 &&
           ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
}

bool RawClient::read_until_closed(std::chrono::milliseconds timeout, std::string &got) {
    if (fd_ < 0) return true;
    bool closed = false;
    got = read_until_close(fd_, timeout, &closed);
    return closed;
}

double sample_value(const std::string &text, const std::string &name, const std::string &labels) {
    const std::string head = labels.empty() ? name + " " : name + "{" + labels + "} ";
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(head, 0) == 0) return std::stod(line.substr(head.size()));
    return -1;
}

PrometheusServer::PrometheusServer(const TempDir &dir, int target_port) : port_(free_port()) {
    const std::string cfg = dir / "prometheus.yml";
    write_file(cfg, "global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: rstwatch\n"
                    "    static_configs:\n"
                    "      - targets: ['127.0.0.1:" +
                        std::to_string(target_port) + "']\n");
    child_ = std::make_unique<Child>(std::vector<std::string>{
        "/usr/bin/prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + dir / "tsdb",
        "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"});
}

PrometheusServer::~PrometheusServer() {
    if (child_) {
        child_->signal(SIGTERM);
        child_->wait(std::chrono::seconds(20));
    }
}

bool PrometheusServer::ready(std::chrono::milliseconds timeout) {
    return wait_until([&] { return http_get(port_, "/-/ready").status == 200; }, timeout);
}

std::optional<double> PrometheusServer::query(const std::string &promql) {
    HttpReply r = http_get(port_, "/api/v1/query?query=" + url_encode(promql));
    if (r.status != 200) return std::nullopt;
    // The body may be chunked; the JSON object is between the outer braces.
    auto b = r.body.find('{'), e = r.body.rfind('}');
    if (b == std::string::npos || e == std::string::npos) return std::nullopt;
    json j = json::parse(r.body.substr(b, e - b + 1), nullptr, false);
    if (!j.is_object() || j["status"] != "success") return std::nullopt;
    const json &res = j["data"]["result"];
    if (!res.is_array() || res.empty()) return std::nullopt;
    return std::stod(res[0]["value"][1].get<std::string>());
}

Rsyslog::Rsyslog(const TempDir &dir, const std::string &input, const std::string &shipped) {
    const std::string work = dir / "rsyslog-work";
    std::filesystem::create_directories(work);
    const std::string cfg = dir / "rsyslog.conf";
    // The configuration documented in docs/log-pipelines.md.
    write_file(cfg, "global(workDirectory=\"" + work +
                        "\" maxMessageSize=\"64k\")\n"
                        "module(load=\"imfile\" mode=\"inotify\")\n"
                        "template(name=\"line\" type=\"string\" string=\"%msg%\\n\")\n"
                        "ruleset(name=\"rstwatch\") {\n"
                        "  action(type=\"omfile\" file=\"" +
                        shipped +
                        "\" template=\"line\")\n"
                        "}\n"
                        "input(type=\"imfile\" file=\"" +
                        input +
                        "\" tag=\"rstwatch\" ruleset=\"rstwatch\"\n"
                        "      reopenOnTruncate=\"on\" freshStartTail=\"off\")\n");
    child_ = std::make_unique<Child>(std::vector<std::string>{"/usr/sbin/rsyslogd", "-n", "-f", cfg,
                                                              "-i", dir / "rsyslogd.pid"});
}

Rsyslog::~Rsyslog() {
    if (child_) {
        child_->signal(SIGTERM);
        child_->wait(std::chrono::seconds(20));
    }
}

} // namespace rwtest
