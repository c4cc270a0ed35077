// Helpers for privileged integration tests: run real processes, read what they
// print with timeouts, run rstwatch sessions and parse their NDJSON.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace rwtest {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string rstwatch_bin();
std::string peer_bin();

// Empty when real BPF programs can be loaded here; else why not.
std::string bpf_unavailable_reason();

// Skips (with the reason printed) where BPF truly cannot load: not root, no BTF.
#define RW_REQUIRE_BPF()                                                                           \
    do {                                                                                           \
        std::string why_ = rwtest::bpf_unavailable_reason();                                       \
        if (!why_.empty()) GTEST_SKIP() << "privileged test skipped: " << why_;                    \
    } while (0)

// A child process with its stdout on a pipe (line reader) and stderr in a file.
class Child {
  public:
    explicit Child(const std::vector<std::string> &argv, bool pipe_stdin = false);
    ~Child();
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;

    pid_t pid() const { return pid_; }
    // Next stdout line, or nullopt on timeout / EOF.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    // Reads lines until one starts with `prefix`; returns the rest (after a
    // space). Fails the test on timeout.
    std::string expect(const std::string &prefix, std::chrono::milliseconds timeout = 10s);
    void write_stdin(const std::string &s);
    // Closes our end of its stdout pipe (the reader goes away: EPIPE).
    void close_stdout();
    void signal(int sig);
    // Exit status (or 128+signal); kills the child after the timeout.
    int wait(std::chrono::milliseconds timeout = 20s);
    // All remaining stdout lines until EOF (bounded by timeout).
    std::vector<std::string> read_all(std::chrono::milliseconds timeout = 20s);
    std::string stderr_text() const;
    bool exited() const { return exited_; }

  private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int in_fd_ = -1;
    std::string err_path_;
    std::string buf_;
    bool eof_ = false;
    bool exited_ = false;
    int status_ = 0;
};

// `rstwatch trace ARGS`, started and waited for until its session_start line.
class Session {
  public:
    explicit Session(std::vector<std::string> args, std::chrono::milliseconds ready_timeout = 15s);
    // SIGINT, then every line it printed, parsed; fails the test on bad JSON
    // or a non-zero exit.
    std::vector<json> stop(int sig = 2 /* SIGINT */);
    // Events seen so far without stopping (reads what is available).
    const json &start_event() const { return start_; }
    pid_t pid() const { return child_.pid(); }
    Child &child() { return child_; }

  private:
    Child child_;
    json start_;
};

std::vector<json> of_type(const std::vector<json> &events, const std::string &type);

// Lines of a file (empty if it does not exist).
std::vector<std::string> file_lines(const std::string &path);
// Waits until a line of `path` contains `needle`.
bool wait_for_line(const std::string &path, const std::string &needle,
                   std::chrono::milliseconds timeout = 15s);
// Runs `rw_peer refused PORT --count N` and waits for it: 2N resets on 6.12+.
void refused_burst(int port, int count);

// The n-th whitespace-separated integer of a helper's line ("connected 4242 123456").
long long field(const std::string &line, int n);

// A loopback TCP port nothing listens on (bound, then released).
int free_port();

// Runs `cmd` through /bin/sh and returns its stdout; fails the test on error.
std::string sh(const std::string &cmd);

// BPF maps held open by process `pid`, by name (from /proc/PID/fdinfo map_id),
// so tests find THEIR rstwatch's maps even when several instances run.
std::map<std::string, unsigned> bpf_maps_of(pid_t pid);
// Number of entries in a BPF map, and all of them (bpftool map dump, with BTF).
std::size_t bpf_map_entries(unsigned map_id);
json bpf_map_dump(unsigned map_id);

// A network namespace created for one test and deleted with it.
class NetNs {
  public:
    explicit NetNs(const std::string &tag);
    ~NetNs();
    const std::string &name() const { return name_; }
    unsigned long inode() const;
    // Runs a shell command inside the namespace.
    std::string exec(const std::string &cmd) const;
    // argv prefix to start a Child inside the namespace.
    std::vector<std::string> wrap(std::vector<std::string> argv) const;

  private:
    std::string name_;
};

// A cgroup v2 directory created for one test and removed with it.
class TestCgroup {
  public:
    explicit TestCgroup(const std::string &tag);
    ~TestCgroup();
    const std::string &path() const { return path_; }    // absolute
    const std::string &relative() const { return rel_; } // below the cgroup2 mount
    // argv that starts `argv` inside this cgroup.
    std::vector<std::string> wrap(std::vector<std::string> argv) const;

  private:
    std::string path_, rel_;
};

} // namespace rwtest
