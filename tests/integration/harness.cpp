#include "harness.hpp"

#include "util/cgroup_fs.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <filesystem>
#include <sys/stat.h>
#include <fstream>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace rwtest {

std::string rstwatch_bin() {
    return RSTWATCH_BIN;
}
std::string peer_bin() {
    return RW_PEER_BIN;
}

std::string bpf_unavailable_reason() {
    if (geteuid() != 0)
        return "not running as root (BPF programs need CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)";
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        return "no kernel BTF at /sys/kernel/btf/vmlinux";
    return {};
}

Child::Child(const std::vector<std::string> &argv, bool pipe_stdin) {
    int out[2], in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0 || (pipe_stdin && pipe2(in, O_CLOEXEC) != 0))
        throw std::runtime_error("pipe");
    char tmpl[] = "/tmp/rwtest-stderr-XXXXXX";
    int err_fd = mkstemp(tmpl);
    err_path_ = tmpl;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    if (pipe_stdin)
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char *> args;
    for (auto &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err_fd);
    if (pipe_stdin) {
        close(in[0]);
        in_fd_ = in[1];
    }
    out_fd_ = out[0];
    if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
}

Child::~Child() {
    if (!exited_ && pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (in_fd_ >= 0) close(in_fd_);
    if (!err_path_.empty()) unlink(err_path_.c_str());
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return line;
        }
        if (eof_) return std::nullopt;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{out_fd_, POLLIN, 0};
        int n = poll(&p, 1, int(left.count()));
        if (n <= 0) continue;
        char tmp[65536];
        ssize_t r = read(out_fd_, tmp, sizeof(tmp));
        if (r <= 0)
            eof_ = true;
        else
            buf_.append(tmp, std::size_t(r));
    }
}

std::string Child::expect(const std::string &prefix, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        auto line = read_line(left.count() > 0 ? left : 0ms);
        if (!line) {
            ADD_FAILURE() << "timed out waiting for '" << prefix << "' from pid " << pid_
                          << "; stderr: " << stderr_text();
            return {};
        }
        if (line->rfind(prefix, 0) == 0)
            return line->size() > prefix.size() ? line->substr(prefix.size() + 1) : std::string();
    }
}

void Child::write_stdin(const std::string &s) {
    if (in_fd_ >= 0) {
        ssize_t n = write(in_fd_, s.data(), s.size());
        (void)n;
    }
}

void Child::signal(int sig) {
    if (!exited_) kill(pid_, sig);
}

int Child::wait(std::chrono::milliseconds timeout) {
    if (exited_) return status_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            exited_ = true;
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return status_;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            ADD_FAILURE() << "pid " << pid_ << " did not exit in time; killing it";
            kill(pid_, SIGKILL);
            waitpid(pid_, &st, 0);
            exited_ = true;
            status_ = 128 + SIGKILL;
            return status_;
        }
        usleep(10000);
    }
}

std::vector<std::string> Child::read_all(std::chrono::milliseconds timeout) {
    std::vector<std::string> lines;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        auto line = read_line(left);
        if (!line) break;
        lines.push_back(*line);
    }
    return lines;
}

std::string Child::stderr_text() const {
    std::ifstream in(err_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Session::Session(std::vector<std::string> args, std::chrono::milliseconds ready_timeout)
    : child_([&] {
          std::vector<std::string> argv{rstwatch_bin(), "trace"};
          argv.insert(argv.end(), args.begin(), args.end());
          return argv;
      }()) {
    auto line = child_.read_line(ready_timeout);
    if (!line) {
        ADD_FAILURE() << "rstwatch trace did not start; stderr: " << child_.stderr_text();
        return;
    }
    start_ = json::parse(*line, nullptr, false);
    EXPECT_EQ(start_.value("event", ""), "session_start") << *line;
}

std::vector<json> Session::stop(int sig) {
    child_.signal(sig);
    std::vector<json> events;
    for (auto &line : child_.read_all(30s)) {
        json j = json::parse(line, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
        if (!j.is_discarded()) events.push_back(std::move(j));
    }
    int status = child_.wait(30s);
    EXPECT_EQ(status, 0) << "rstwatch exited with " << status
                         << "; stderr: " << child_.stderr_text();
    return events;
}

std::vector<json> of_type(const std::vector<json> &events, const std::string &type) {
    std::vector<json> out;
    for (auto &e : events)
        if (e.value("event", "") == type) out.push_back(e);
    return out;
}

void Child::close_stdout() {
    if (out_fd_ >= 0) {
        close(out_fd_);
        out_fd_ = -1;
        eof_ = true;
    }
}

std::vector<std::string> file_lines(const std::string &path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        out.push_back(line);
    return out;
}

bool wait_for_line(const std::string &path, const std::string &needle,
                   std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        for (auto &l : file_lines(path))
            if (l.find(needle) != std::string::npos) return true;
        usleep(20000);
    }
    return false;
}

void refused_burst(int port, int count) {
    Child c({peer_bin(), "refused", std::to_string(port), "--count", std::to_string(count)});
    EXPECT_EQ(c.expect("done", 60s), std::to_string(count));
    c.wait();
}

long long field(const std::string &line, int n) {
    std::istringstream in(line);
    long long v = 0;
    for (int i = 0; i <= n; ++i)
        if (!(in >> v)) return -1;
    return v;
}

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

std::string sh(const std::string &cmd) {
    FILE *p = popen(cmd.c_str(), "r");
    if (!p) {
        ADD_FAILURE() << "popen failed: " << cmd;
        return {};
    }
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        out.append(buf, n);
    int st = pclose(p);
    EXPECT_EQ(st, 0) << "command failed: " << cmd << "\n" << out;
    return out;
}

std::map<std::string, unsigned> bpf_maps_of(pid_t pid) {
    std::map<std::string, unsigned> out;
    std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(entry.path());
        std::string line;
        unsigned id = 0;
        while (std::getline(in, line))
            if (line.rfind("map_id:", 0) == 0) id = unsigned(std::stoul(line.substr(7)));
        if (!id) continue;
        json j =
            json::parse(sh("bpftool map show id " + std::to_string(id) + " -j"), nullptr, false);
        if (j.is_object() && j.contains("name")) out[j["name"].get<std::string>()] = id;
    }
    return out;
}

json bpf_map_dump(unsigned map_id) {
    // Without -j, bpftool 7.1 prints the BTF view of keys and values, as JSON.
    json j = json::parse(sh("bpftool map dump id " + std::to_string(map_id)), nullptr, false);
    json out = json::array();
    if (j.is_array())
        for (auto &e : j)
            out.push_back(e.contains("formatted") ? e["formatted"] : e);
    return out;
}

std::size_t bpf_map_entries(unsigned map_id) {
    json j =
        json::parse(sh("bpftool map dump id " + std::to_string(map_id) + " -j"), nullptr, false);
    return j.is_array() ? j.size() : 0;
}

NetNs::NetNs(const std::string &tag) : name_("rwt_" + tag + "_" + std::to_string(getpid())) {
    sh("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up");
}

NetNs::~NetNs() {
    std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
}

unsigned long NetNs::inode() const {
    struct stat st {};
    stat(("/run/netns/" + name_).c_str(), &st);
    return st.st_ino;
}

std::string NetNs::exec(const std::string &cmd) const {
    return sh("ip netns exec " + name_ + " sh -c '" + cmd + "'");
}

std::vector<std::string> NetNs::wrap(std::vector<std::string> argv) const {
    std::vector<std::string> out{"/usr/bin/ip", "netns", "exec", name_};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

namespace {
std::string cgroup2_root() {
    std::string root = rstwatch::cgroup2_mount_point();
    return root.empty() ? "/sys/fs/cgroup" : root;
}
} // namespace

TestCgroup::TestCgroup(const std::string &tag) {
    rel_ = "/rwtest-" + tag + "-" + std::to_string(getpid());
    path_ = cgroup2_root() + rel_;
    std::filesystem::create_directory(path_);
}

TestCgroup::~TestCgroup() {
    // Move stragglers out so the directory can go.
    std::ifstream procs(path_ + "/cgroup.procs");
    std::string pid;
    while (std::getline(procs, pid)) {
        std::ofstream root(cgroup2_root() + "/cgroup.procs");
        root << pid;
    }
    rmdir(path_.c_str());
}

std::vector<std::string> TestCgroup::wrap(std::vector<std::string> argv) const {
    std::string cmd = "echo $$ > " + path_ + "/cgroup.procs && exec";
    for (auto &a : argv)
        cmd += " '" + a + "'";
    return {"/bin/sh", "-c", cmd};
}

} // namespace rwtest
