// Malformed command lines and what their one-line error must mention. One table
// drives two tests: the unit test (parse_cli throws UsageError, exit 2) and the
// privileged process-level test (the real binary exits 2 and never calls bpf(2)).
// A new subcommand adds its rows here.
#pragma once

#include <cctype>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "util/cgroup_fs.hpp"

namespace rwcases {

struct BadCli {
    std::vector<std::string> args;     // argv after "rstwatch"
    std::vector<std::string> mentions; // substrings the one-line message must contain
    // Rejected when the command runs, not by parse_cli (report's input files):
    // only the process-level test runs the row.
    bool at_run_time = false;
};

// "rstwatch trace --port 0" in failure messages, and a test name from the row.
inline std::string to_string(const BadCli &c) {
    std::string s = "rstwatch";
    for (const auto &a : c.args)
        s += " '" + a + "'";
    return s;
}
inline void PrintTo(const BadCli &c, std::ostream *os) {
    *os << to_string(c);
}
struct BadCliName {
    template <class Info> std::string operator()(const Info &info) const {
        std::string name = std::to_string(info.index);
        for (const auto &a : info.param.args) {
            name += '_';
            for (char ch : a)
                name += (std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
        }
        return name.substr(0, 60);
    }
};

// Paths some rows need, chosen by the test that runs the table.
struct BadCliEnv {
    std::string unwritable_dir; // exists, but no file can be created in it
    std::string cgroup_v1_dir;  // a directory that is not cgroup v2
};

// A cgroup v1 hierarchy's mount point (this CI host has them beside the v2
// mount), or /proc when the host has none: both are "not cgroup v2".
inline std::string cgroup_v1_dir_or_proc() {
    std::string v1 = rstwatch::mount_point_of("cgroup");
    return v1.empty() ? "/proc" : v1;
}

inline std::vector<BadCli> bad_cli_cases(const BadCliEnv &env) {
    const std::string v1 = env.cgroup_v1_dir;
    const std::string ro = env.unwritable_dir + "/rw-out.ndjson";
    return {
        // unknown subcommands and flags
        {{}, {"subcommand"}},
        {{"frobnicate"}, {"frobnicate"}},
        {{"trace", "--bogus"}, {"--bogus"}},
        {{"trace", "--bogus=3"}, {"--bogus"}},
        {{"trace", "-x"}, {"-x"}},
        {{"--pid", "5", "trace"}, {"--pid"}},
        {{"audit", "--ringbuf-size", "8M"}, {"--ringbuf-size"}},
        {{"audit", "--events", "reset"}, {"--events"}},
        {{"audit", "--output", "/tmp/rw.json"}, {"--output"}},
        // durations
        {{"trace", "--duration", "10x"}, {"--duration", "'10x'"}},
        {{"trace", "--duration", "-5s"}, {"--duration", "'-5s'"}},
        {{"trace", "--duration", ""}, {"--duration", "''"}},
        {{"trace", "--duration", "1.5s"}, {"--duration", "'1.5s'"}},
        {{"trace", "--duration", "5 s"}, {"--duration", "'5 s'"}},
        {{"trace", "--duration", "ms"}, {"--duration", "'ms'"}},
        {{"trace", "--duration", "0"}, {"--duration", "'0'"}},
        {{"trace", "--duration", "99999999999999999999h"},
         {"--duration", "'99999999999999999999h'"}},
        {{"trace", "--duration", "9223372036854775807s"}, {"--duration", "'9223372036854775807s'"}},
        {{"trace", "--duration", "400d"}, {"--duration", "'400d'"}},
        {{"trace", "--min-idle", "50d"}, {"--min-idle", "'50d'"}},
        {{"trace", "--min-idle", "-1s"}, {"--min-idle", "'-1s'"}},
        {{"trace", "--idle-threshold", "10x"}, {"--idle-threshold", "'10x'"}},
        {{"trace", "--middlebox-timeout", "aws"}, {"--middlebox-timeout", "'aws'"}},
        {{"trace", "--middlebox-timeout", "0"}, {"--middlebox-timeout", "'0'"}},
        {{"trace", "--middlebox-timeout", "9999999999999h"}, {"--middlebox-timeout"}},
        {{"audit", "--middlebox-timeout", "5x"}, {"--middlebox-timeout", "'5x'"}},
        // ports
        {{"trace", "--port", "0"}, {"--port", "'0'"}},
        {{"trace", "--port", "65536"}, {"--port", "'65536'"}},
        {{"trace", "--port", "-1"}, {"--port", "'-1'"}},
        {{"trace", "--port", "80x"}, {"--port", "'80x'"}},
        {{"trace", "--port", "99999999999999999999999"}, {"--port"}},
        {{"audit", "--port", "70000"}, {"--port", "'70000'"}},
        // pids and other numbers
        {{"trace", "--pid", "abc"}, {"--pid", "'abc'"}},
        {{"trace", "--pid", "12abc"}, {"--pid", "'12abc'"}},
        {{"trace", "--pid", "-1"}, {"--pid", "'-1'"}},
        {{"trace", "--pid", "0"}, {"--pid", "'0'"}},
        {{"trace", "--pid", "1e3"}, {"--pid", "'1e3'"}},
        {{"trace", "--pid", "4194305"}, {"--pid", "'4194305'"}},
        {{"audit", "--pid", "nginx"}, {"--pid", "'nginx'"}},
        {{"trace", "--netns", "abc"}, {"--netns", "'abc'"}},
        {{"trace", "--count", "0"}, {"--count", "'0'"}},
        {{"trace", "--count", "-3"}, {"--count", "'-3'"}},
        {{"trace", "--max-sockets", "10"}, {"--max-sockets", "'10'"}},
        {{"trace", "--max-sockets", "99999999999"}, {"--max-sockets", "'99999999999'"}},
        // enumerations and names
        {{"trace", "--events", "reset,bogus"}, {"--events", "'reset,bogus'"}},
        {{"trace", "--events", ","}, {"--events", "','"}},
        {{"trace", "--events", ""}, {"--events"}},
        {{"trace", "--verdict", "maybe"}, {"--verdict", "'maybe'"}},
        {{"trace", "--format", "xml"}, {"--format", "'xml'"}},
        {{"trace", "--color", "pink"}, {"--color", "'pink'"}},
        {{"audit", "--format", "yaml"}, {"--format", "'yaml'"}},
        {{"trace", "--comm", "a-name-longer-than-15"}, {"--comm", "'a-name-longer-than-15'"}},
        // ring buffer sizes: a power of two, a multiple of the page size, <= 1G
        {{"trace", "--ringbuf-size", "12345"}, {"--ringbuf-size", "'12345'"}},
        {{"trace", "--ringbuf-size", "6K"}, {"--ringbuf-size", "'6K'"}},
        {{"trace", "--ringbuf-size", "1024"}, {"--ringbuf-size", "'1024'"}},
        {{"trace", "--ringbuf-size", "0"}, {"--ringbuf-size", "'0'"}},
        {{"trace", "--ringbuf-size", "2G"}, {"--ringbuf-size", "'2G'"}},
        {{"trace", "--ringbuf-size", "1T"}, {"--ringbuf-size", "'1T'"}},
        {{"trace", "--ringbuf-size", "18446744073709551616"}, {"--ringbuf-size"}},
        // cgroups: missing, cgroup v1, not a cgroup at all, escaping the v2 mount
        {{"trace", "--cgroup", "/no/such/cgroup/rwtest"}, {"--cgroup", "'/no/such/cgroup/rwtest'"}},
        {{"trace", "--cgroup", "no-such-child-rwtest"}, {"--cgroup", "'no-such-child-rwtest'"}},
        {{"trace", "--cgroup", v1}, {"--cgroup", "'" + v1 + "'", "cgroup v2"}},
        {{"trace", "--cgroup", "/proc"}, {"--cgroup", "'/proc'", "cgroup v2"}},
        {{"trace", "--cgroup", "../../../../../../etc"}, {"--cgroup", "'../../../../../../etc'"}},
        // output files
        {{"trace", "--output", "/no/such/dir/out.json"}, {"--output", "'/no/such/dir/out.json'"}},
        {{"trace", "--output", "/tmp"}, {"--output", "'/tmp'"}},
        {{"trace", "--output", ro}, {"--output", "'" + ro + "'"}},
        {{"trace", "--output", "/proc/rw-out.ndjson"}, {"--output", "'/proc/rw-out.ndjson'"}},
        {{"trace", "--rotate-keep", "0", "--output", "/tmp/rw.json"}, {"--rotate-keep", "'0'"}},
        {{"trace", "--rotate-keep", "1001", "--output", "/tmp/rw.json"},
         {"--rotate-keep", "'1001'"}},
        {{"trace", "--rotate-size", "1K", "--output", "/tmp/rw.json"}, {"--rotate-size", "'1K'"}},
        // conflicting options
        {{"trace", "--rotate-size", "10M"}, {"--rotate-size", "--output"}},
        {{"trace", "--rotate-keep", "3"}, {"--rotate-keep", "--output"}},
        {{"trace", "--output", "/tmp/rw.json", "--format", "text"}, {"--output", "--format text"}},
        {{"trace", "--verdict", "not_idle", "--events", "keepalive"},
         {"--verdict", "not_idle", "--events"}},
        {{"trace", "--pid", "1", "--pid", "2"}, {"--pid"}},
        {{"trace", "--duration", "1s", "--duration", "2s"}, {"--duration"}},
        // enforce
        {{"enforce"}, {"--cgroup"}},
        {{"enforce", "--cgroup", "/"}, {"--idle"}},
        {{"enforce", "--cgroup", "/", "--idle", "0"}, {"--idle", "'0'"}},
        {{"enforce", "--cgroup", "/", "--idle", "10x"}, {"--idle", "'10x'"}},
        {{"enforce", "--cgroup", "/", "--idle", "-5s"}, {"--idle", "'-5s'"}},
        {{"enforce", "--cgroup", "/", "--idle", "99999999999999999999h"}, {"--idle"}},
        {{"enforce", "--cgroup", "/", "--idle", "40000s"}, {"--idle", "'40000s'"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--interval", "1.5s"},
         {"--interval", "'1.5s'"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--probes", "0"}, {"--probes", "'0'"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--probes", "many"}, {"--probes", "'many'"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--mode", "sometimes"},
         {"--mode", "'sometimes'"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--duration", "-1s"},
         {"--duration", "'-1s'"}},
        {{"enforce", "--cgroup", v1, "--idle", "60s"}, {"--cgroup", "'" + v1 + "'", "cgroup v2"}},
        {{"enforce", "--cgroup", "/no/such/cgroup/rwtest", "--idle", "60s"},
         {"--cgroup", "'/no/such/cgroup/rwtest'"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--output", ro},
         {"--output", "'" + ro + "'"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--rotate-keep", "0", "--output",
          "/tmp/rw.json"},
         {"--rotate-keep", "'0'"}},
        {{"enforce", "--cgroup", "/", "--idle", "400s", "--middlebox-timeout", "350s"},
         {"--idle", "400s", "--middlebox-timeout"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--pin", "--dry-run"},
         {"--dry-run", "--pin"}},
        {{"enforce", "--remove", "--status"}, {"--remove", "--status"}},
        {{"enforce", "--status", "--idle", "5s"}, {"--idle", "--status"}},
        {{"enforce", "--remove"}, {"--remove", "--cgroup"}},
        {{"enforce", "--cgroup", "/", "--idle", "60s", "--port", "80"}, {"--port"}},
        // doctor
        {{"doctor", "--root", "/no/such/root"}, {"--root", "'/no/such/root'"}},
        {{"doctor", "--middlebox-timeout", "0"}, {"--middlebox-timeout", "'0'"}},
        {{"doctor", "--format", "xml"}, {"--format", "'xml'"}},
        {{"doctor", "--all-netns=maybe"}, {"--all-netns"}},
        {{"doctor", "--pid", "1"}, {"--pid"}},
        // report
        {{"report", "--middlebox-timeout", "soon"}, {"--middlebox-timeout", "'soon'"}},
        {{"report", "--format", "csv"}, {"--format", "'csv'"}},
        {{"report", "--bogus", "in.ndjson"}, {"--bogus"}},
        {{"report", "/no/such/input.ndjson"}, {"/no/such/input.ndjson"}, true},
        {{"report", "/tmp"}, {"/tmp", "directory"}, true},
    };
}

} // namespace rwcases
