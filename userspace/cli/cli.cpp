#include "cli/cli.hpp"

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <filesystem>
#include <linux/magic.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "agent/config_file.hpp"
#include "util/cgroup_fs.hpp"
#include "util/error.hpp"
#include "util/middlebox.hpp"
#include "util/text_safety.hpp"
#include "util/units.hpp"
#include "rstwatch/version.hpp"

namespace rstwatch {

namespace {

// A value as the user typed it, quoted in a one-line message: control
// characters (a newline, an escape sequence) are shown as \xNN.
std::string shown(std::string_view v) {
    return terminal_safe(v);
}

[[noreturn]] void bad(const std::string &flag, const std::string &value,
                      const std::string &expected) {
    throw UsageError("invalid value '" + shown(value) + "' for " + shown(flag) + ": expected " +
                     expected);
}

template <class T>
T parse_uint(const std::string &flag, const std::string &v, T min, T max, const char *what) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < min || n > max)
        bad(flag, v,
            std::string(what) + " (" + std::to_string(min) + ".." + std::to_string(max) + ")");
    return T(n);
}

// Upper bounds keep every later conversion (to ns, to the kernel's u32 ms, x9/10
// for the default idle threshold) far from overflow.
struct DurationLimit {
    milliseconds max;
    const char *label;
};
constexpr DurationLimit kMaxDuration{std::chrono::hours(24 * 365), "365d"};
constexpr DurationLimit kMaxIdle{std::chrono::hours(24 * 49), "49d"}; // kernel filter: u32 ms

milliseconds parse_dur(const std::string &flag, const std::string &v, bool allow_zero = false,
                       DurationLimit limit = kMaxDuration) {
    auto d = parse_duration(v);
    if (!d || (!allow_zero && d->count() == 0) || *d > limit.max)
        bad(flag, v,
            std::string("a duration from ") + (allow_zero ? "0" : "1ms") + " to " + limit.label +
                ", such as 500ms, 30s, 5m or 1h");
    return *d;
}

milliseconds parse_middlebox(const std::string &flag, const std::string &v) {
    auto d = parse_middlebox_timeout(v);
    if (!d || *d > kMaxDuration.max) {
        std::string names;
        for (const auto &p : middlebox_presets())
            names += (names.empty() ? "" : ", ") + std::string(p.name);
        bad(flag, v,
            std::string("a duration up to ") + kMaxDuration.label +
                " (350s, 4m) or one of: " + names);
    }
    return *d;
}

// --output must be a file rstwatch can append to, checked now so that a bad
// path never gets as far as loading BPF. Probes without leaving a file behind.
void check_output_path(const std::string &path) {
    auto fail = [&](const std::string &expected, int err) {
        bad("--output", path, expected + (err ? std::string(" (") + std::strerror(err) + ")" : ""));
    };
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) fail("a file, not a directory", 0);
        if (S_ISBLK(st.st_mode)) fail("a regular file, not a block device", 0);
        if (S_ISFIFO(st.st_mode)) return; // opening would wait for a reader
        int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) fail("a file rstwatch can append to", errno);
        close(fd);
        return;
    }
    if (errno != ENOENT) fail("a file in an accessible directory", errno);
    std::filesystem::path p(path);
    std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        fail("a file in an existing directory", 0);
    // An unnamed file in that directory: what creating the real one needs
    // (write permission, a writable filesystem), and nothing is left behind.
    int fd = open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
    if (fd >= 0) {
        close(fd);
        return;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        fail("a file in a writable directory", errno);
    // Filesystems without O_TMPFILE (procfs, sysfs, NFS): create it and remove it.
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT) fail("a file in a directory that allows new files", 0);
    if (fd < 0) fail("a file in a writable directory", errno);
    close(fd);
    unlink(path.c_str());
}

// PORT (loopback) or ADDR:PORT with a numeric IPv4 address or [IPv6]. No name
// lookup: what the agent exposes must be exactly what the flag says.
ListenAddress parse_listen(const std::string &flag, const std::string &v) {
    const char *expected = "PORT (on 127.0.0.1) or ADDR:PORT with a numeric address, such as "
                           "9478, 127.0.0.1:9478, 0.0.0.0:9478 or [::1]:9478";
    ListenAddress a;
    std::string port = v;
    a.host = "127.0.0.1";
    if (!v.empty() && v.front() == '[') {
        auto close = v.find("]:");
        if (close == std::string::npos) bad(flag, v, expected);
        a.host = v.substr(1, close - 1);
        port = v.substr(close + 2);
        in6_addr a6{};
        if (inet_pton(AF_INET6, a.host.c_str(), &a6) != 1) bad(flag, v, expected);
    } else if (auto colon = v.rfind(':'); colon != std::string::npos) {
        a.host = v.substr(0, colon);
        port = v.substr(colon + 1);
        in_addr a4{};
        if (inet_pton(AF_INET, a.host.c_str(), &a4) != 1) bad(flag, v, expected);
    }
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc() || p != port.data() + port.size() || n < 1 || n > 65535)
        bad(flag, v, expected);
    a.port = std::uint16_t(n);
    return a;
}

// --config: every `key = value` becomes `--key value` for the options the
// command line did not set (the command line wins). Returns which flags came
// from the file (flag -> line), to say so in error messages.
std::map<std::string, unsigned> merge_config(CLI::App *cmd, const std::string &path) {
    std::map<std::string, unsigned> from_file;
    for (const ConfigEntry &e : load_config_file(path)) {
        const std::string flag = "--" + e.key;
        auto where = [&] { return "--config " + path + " line " + std::to_string(e.line); };
        if (e.key == "config" || e.key == "help" || e.key == "check-config")
            throw UsageError(where() + ": '" + e.key + "' cannot be set in a config file");
        CLI::Option *opt = cmd->get_option_no_throw(flag);
        if (!opt)
            throw UsageError(where() + ": unknown key '" + e.key +
                             "' (keys are the long flags of " + cmd->get_name() +
                             ", without the dashes; see rstwatch " + cmd->get_name() + " --help)");
        if (opt->count() > 0) continue; // given on the command line
        try {
            opt->add_result(e.value);
            opt->run_callback();
        } catch (const CLI::ParseError &err) {
            throw UsageError(where() + ": invalid value '" + e.value + "' for " + flag + ": " +
                             err.what());
        }
        from_file[flag] = e.line;
    }
    return from_file;
}

// Raw strings as typed, so that every value gets the same kind of message.
struct RawOutput {
    std::string format = "json", color = "auto", output, rotate_size, rotate_keep;
};
struct RawFilter {
    std::string pid, comm, port, netns, cgroup, min_idle, verdict;
};

void add_output_flags(CLI::App *cmd, RawOutput &o, bool file_sink) {
    cmd->add_option("--format", o.format, "Output format: json (NDJSON, default) or text");
    cmd->add_option("--color", o.color,
                    "Colour in text mode: auto (when stdout is a TTY), always, never");
    if (file_sink) {
        cmd->add_option("-o,--output", o.output,
                        "Append NDJSON to this file (mode 0640) instead of stdout");
        cmd->add_option("--rotate-size", o.rotate_size,
                        "Rotate the output file at this size (e.g. 100M)");
        cmd->add_option("--rotate-keep", o.rotate_keep, "Rotated files to keep (default 5)");
    }
}

void add_filter_flags(CLI::App *cmd, RawFilter &f, bool full) {
    cmd->add_option("--pid", f.pid, "Only sockets owned by this process id");
    cmd->add_option("--comm", f.comm, "Only sockets owned by processes with this name");
    cmd->add_option("--port", f.port, "Only connections with this local or remote port");
    cmd->add_option("--min-idle", f.min_idle, "Only connections idle at least this long");
    if (full) {
        cmd->add_option("--netns", f.netns,
                        "Only sockets in this network namespace (inode number)");
        cmd->add_option("--cgroup", f.cgroup, "Only sockets of this cgroup v2 and its descendants");
        cmd->add_option("--verdict", f.verdict, "Only resets/timeouts with this verdict");
    }
}

// Agent mode: config file, periodic audit, rate limit, metrics.
struct RawAgent {
    std::string config, audit_interval, max_eps, metrics_listen, metrics_top;
    bool check_config = false;
};

void add_agent_flags(CLI::App *cmd, RawAgent &a) {
    cmd->add_option("--config", a.config,
                    "Read flags from this file (key = value per line, keys are the long flag "
                    "names); the command line wins; SIGHUP reloads it");
    cmd->add_option("--audit-interval", a.audit_interval,
                    "Also emit audit_socket/audit_process records at start and every DURATION");
    cmd->add_option("--max-events-per-sec", a.max_eps,
                    "Rate limit for event lines; what it suppresses is counted in lost records "
                    "(reason rate_limit)");
    cmd->add_option("--metrics-listen", a.metrics_listen,
                    "Serve Prometheus /metrics on PORT (127.0.0.1) or ADDR:PORT");
    cmd->add_flag("--check-config", a.check_config,
                  "Validate the flags and --config file, then exit (0: valid, 2: not); loads "
                  "nothing");
    cmd->add_option("--metrics-top-comm", a.metrics_top,
                    "Process names with their own audit gauge series (default 20); the rest "
                    "are summed as comm=\"other\"");
}

void finish_agent(const RawAgent &r, TraceOptions &o) {
    o.config_path = r.config;
    if (!r.audit_interval.empty()) {
        o.audit_interval = parse_dur("--audit-interval", r.audit_interval);
        if (o.audit_interval->count() < 1000)
            bad("--audit-interval", r.audit_interval, "a duration of at least 1s, such as 5m");
    }
    if (!r.max_eps.empty())
        o.max_events_per_sec = parse_uint<std::uint64_t>("--max-events-per-sec", r.max_eps, 1,
                                                         1'000'000'000, "events per second");
    if (!r.metrics_listen.empty())
        o.metrics_listen = parse_listen("--metrics-listen", r.metrics_listen);
    if (!r.metrics_top.empty())
        o.metrics_top_comm = parse_uint<unsigned>("--metrics-top-comm", r.metrics_top, 1, 1000,
                                                  "a number of process names");
}

OutputOptions finish_output(const RawOutput &r) {
    OutputOptions o;
    if (r.format == "json")
        o.format = Format::json;
    else if (r.format == "text")
        o.format = Format::text;
    else
        bad("--format", r.format, "json or text");
    if (r.color == "auto")
        o.color = Color::auto_;
    else if (r.color == "always")
        o.color = Color::always;
    else if (r.color == "never")
        o.color = Color::never;
    else
        bad("--color", r.color, "auto, always or never");
    o.path = r.output;
    if (!o.path.empty()) {
        if (o.format != Format::json)
            throw UsageError("--output writes NDJSON: it cannot be combined with --format text");
        check_output_path(o.path);
    }
    if (!r.rotate_size.empty()) {
        if (o.path.empty()) throw UsageError("--rotate-size needs --output");
        auto s = parse_size(r.rotate_size);
        if (!s || *s < 4096)
            bad("--rotate-size", r.rotate_size, "a size of at least 4K, such as 64M");
        o.rotate_size = *s;
    }
    if (!r.rotate_keep.empty()) {
        if (o.path.empty()) throw UsageError("--rotate-keep needs --output");
        o.rotate_keep =
            parse_uint<unsigned>("--rotate-keep", r.rotate_keep, 1, 1000, "a number of files");
    }
    return o;
}

FilterOptions finish_filter(const RawFilter &r) {
    FilterOptions f;
    if (!r.pid.empty())
        f.pid = parse_uint<std::uint32_t>("--pid", r.pid, 1, 4194304, "a process id");
    if (!r.comm.empty()) {
        if (r.comm.size() > 15)
            bad("--comm", r.comm, "a process name of at most 15 characters (the kernel's comm)");
        f.comm = r.comm;
    }
    if (!r.port.empty()) f.port = parse_uint<std::uint16_t>("--port", r.port, 1, 65535, "a port");
    if (!r.netns.empty())
        f.netns = parse_uint<std::uint32_t>("--netns", r.netns, 1, 0xffffffffu,
                                            "a network namespace inode");
    if (!r.min_idle.empty()) f.min_idle = parse_dur("--min-idle", r.min_idle, true, kMaxIdle);
    if (!r.verdict.empty()) {
        f.verdict = parse_verdict(r.verdict);
        if (!f.verdict)
            bad("--verdict", r.verdict,
                "keepalive_disabled, keepalive_too_slow, not_idle, no_socket, local_abort or "
                "unknown");
    }
    if (!r.cgroup.empty()) {
        f.cgroup = r.cgroup;
        resolve_cgroup(r.cgroup, f.cgroup_id, f.cgroup_level);
    }
    return f;
}

// `rstwatch enforce` as typed.
struct RawEnforce {
    std::string cgroup, idle, interval, probes, mode, middlebox, duration;
    bool existing = false, dry_run = false, pin = false, remove = false, status = false;
};

// A whole number of seconds in the kernel's range for a TCP_KEEP* option.
std::uint32_t parse_keepalive_seconds(const std::string &flag, const std::string &v,
                                      const char *option) {
    auto d = parse_duration(v);
    const std::string expected = std::string("a whole number of seconds from 1s to 32767s (the "
                                             "kernel's ") +
                                 option + " range)";
    if (!d || d->count() % 1000 != 0 || d->count() < 1000 || d->count() > 32767 * 1000)
        bad(flag, v, expected);
    return std::uint32_t(d->count() / 1000);
}

EnforceOptions finish_enforce(const RawEnforce &r, const RawOutput &out) {
    EnforceOptions o;
    o.out = finish_output(out);
    if (r.remove && r.status) throw UsageError("--remove cannot be combined with --status");
    if (r.remove || r.status) {
        const std::string action = r.remove ? "--remove" : "--status";
        // Options that only describe an enforcement to install.
        const std::pair<std::string, std::string> only_enforce[] = {
            {"--idle", r.idle}, {"--interval", r.interval},           {"--probes", r.probes},
            {"--mode", r.mode}, {"--middlebox-timeout", r.middlebox}, {"--duration", r.duration}};
        for (const auto &[flag, value] : only_enforce)
            if (!value.empty())
                throw UsageError(flag + " " + shown(value) + " cannot be combined with " + action);
        const std::pair<const char *, bool> only_enforce_flags[] = {
            {"--existing", r.existing}, {"--dry-run", r.dry_run}, {"--pin", r.pin}};
        for (const auto &[flag, given] : only_enforce_flags)
            if (given) throw UsageError(std::string(flag) + " cannot be combined with " + action);
        o.action = r.remove ? EnforceAction::remove : EnforceAction::status;
        if (r.remove && r.cgroup.empty())
            throw UsageError("--remove needs --cgroup PATH: the cgroup whose pinned enforcement "
                             "to remove");
        if (!r.cgroup.empty()) {
            o.cgroup = r.cgroup;
            resolve_cgroup(r.cgroup, o.cgroup_id, o.cgroup_level, &o.cgroup_dir);
        }
        return o;
    }

    if (r.cgroup.empty())
        throw UsageError("--cgroup PATH is required: the cgroup v2 whose connections get "
                         "keepalive (or --status, --remove)");
    if (r.idle.empty())
        throw UsageError("--idle DURATION is required: the keepalive idle time to enforce, "
                         "shorter than the middlebox timeout");
    o.idle_s = parse_keepalive_seconds("--idle", r.idle, "TCP_KEEPIDLE");
    if (!r.interval.empty())
        o.interval_s = parse_keepalive_seconds("--interval", r.interval, "TCP_KEEPINTVL");
    if (!r.probes.empty())
        o.probes = parse_uint<std::uint32_t>("--probes", r.probes, 1, 127,
                                             "a number of probes (the kernel's TCP_KEEPCNT)");
    if (r.mode.empty() || r.mode == "unset-only")
        o.mode = EnforceMode::unset_only;
    else if (r.mode == "always")
        o.mode = EnforceMode::always;
    else
        bad("--mode", r.mode, "unset-only or always");
    if (!r.middlebox.empty()) {
        o.middlebox_timeout = parse_middlebox("--middlebox-timeout", r.middlebox);
        if (std::chrono::milliseconds(std::uint64_t(o.idle_s) * 1000) >= *o.middlebox_timeout)
            throw UsageError("--idle " + shown(r.idle) +
                             " must be shorter than --middlebox-timeout " + shown(r.middlebox) +
                             " (" + format_duration(*o.middlebox_timeout) +
                             "): the first probe has to reach the middlebox before it forgets "
                             "the connection");
    }
    if (r.pin && r.dry_run)
        throw UsageError("--dry-run cannot be combined with --pin: a pinned enforcement must "
                         "enforce");
    if (!r.duration.empty()) o.duration = parse_dur("--duration", r.duration);
    o.existing = r.existing;
    o.dry_run = r.dry_run;
    o.pin = r.pin;
    o.cgroup = r.cgroup;
    resolve_cgroup(r.cgroup, o.cgroup_id, o.cgroup_level, &o.cgroup_dir);
    return o;
}

} // namespace

std::uint32_t parse_events(const std::string &list) {
    std::uint32_t mask = 0;
    std::stringstream ss(list);
    std::string item;
    bool any = false;
    while (std::getline(ss, item, ',')) {
        any = true;
        if (item == "reset")
            mask |= RW_EMIT_RESET;
        else if (item == "timeout")
            mask |= RW_EMIT_TIMEOUT;
        else if (item == "keepalive")
            mask |= RW_EMIT_KEEPALIVE;
        else if (item == "connection")
            mask |= RW_EMIT_CONNECTION;
        else if (item == "summary")
            mask |= kEventSummary;
        else if (item == "all")
            mask |= RW_EMIT_RESET | RW_EMIT_TIMEOUT | RW_EMIT_KEEPALIVE | RW_EMIT_CONNECTION |
                    kEventSummary;
        else
            bad("--events", list,
                "a comma-separated list of reset, timeout, keepalive, connection, summary, all");
    }
    if (!any)
        bad("--events", list,
            "a comma-separated list of reset, timeout, keepalive, connection, summary, all");
    return mask;
}

void resolve_cgroup(const std::string &path, std::uint64_t &id, int &level, std::string *dir) {
    std::string root = cgroup2_mount_point();
    if (root.empty())
        throw UsageError("--cgroup " + shown(path) +
                         ": no cgroup v2 hierarchy is mounted on this host");
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root_path = fs::weakly_canonical(root, ec);
    const std::string root_str = ec ? root : root_path.string();
    auto inside_root = [&](const std::string &s) {
        return s == root_str || (s.size() > root_str.size() && s.rfind(root_str, 0) == 0 &&
                                 (root_str == "/" || s[root_str.size()] == '/'));
    };
    fs::path p(path);
    // Accept a filesystem path below the cgroup2 mount, and a path as
    // /proc/PID/cgroup prints it (relative to the mount). Any other absolute
    // path that exists (a cgroup v1 hierarchy, say) is named for what it is.
    std::vector<fs::path> candidates;
    if (p.is_absolute() && inside_root(fs::weakly_canonical(p, ec).string())) {
        candidates.push_back(p);
    } else {
        candidates.push_back(fs::path(root) / p.relative_path());
        if (p.is_absolute()) candidates.push_back(p);
    }
    fs::path full;
    for (const auto &c : candidates) {
        if (fs::is_directory(c, ec)) {
            full = fs::weakly_canonical(c, ec);
            if (!ec) break;
            full.clear();
        }
    }
    const std::string expected = "an existing cgroup v2 directory (absolute, or relative to " +
                                 root + ", as /proc/PID/cgroup shows it)";
    if (full.empty()) bad("--cgroup", path, expected);
    struct statfs sfs {};
    if (statfs(full.c_str(), &sfs) != 0) bad("--cgroup", path, expected);
    if (sfs.f_type == CGROUP_SUPER_MAGIC)
        bad("--cgroup", path,
            "a cgroup v2 directory: this one is in a cgroup v1 hierarchy (v2 is mounted at " +
                root + ")");
    if (sfs.f_type != CGROUP2_SUPER_MAGIC)
        bad("--cgroup", path,
            "a cgroup v2 directory: this one is not on a cgroup filesystem (v2 is mounted at " +
                root + ")");
    if (!inside_root(full.string()))
        bad("--cgroup", path, "a directory inside the cgroup v2 mount " + root);
    std::string rel = full.string().substr(root_str.size());
    id = CgroupResolver::id_of(full.string());
    level = 0;
    for (char c : rel)
        if (c == '/') ++level;
    if (dir) *dir = full.string();
}

namespace {

// Where flags set by --config came from, to name the line in error messages.
struct ConfigOrigin {
    std::string path;
    std::map<std::string, unsigned> lines; // flag -> line
};

CliResult parse_cli_impl(const std::vector<std::string> &args, std::ostream &out,
                         ConfigOrigin &origin) {
    CLI::App app{"rstwatch: explains TCP resets and idle-connection deaths with eBPF", "rstwatch"};
    app.require_subcommand(1);
    app.set_version_flag("-V,--version", std::string("rstwatch ") + RSTWATCH_VERSION);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "Debug logging on stderr (includes libbpf messages)");

    // trace
    auto *trace =
        app.add_subcommand("trace", "Trace TCP resets and timeouts live (NDJSON on stdout)");
    RawOutput t_out;
    RawFilter t_filter;
    std::string t_events, t_duration, t_count, t_ringbuf, t_max_sockets, t_middlebox, t_threshold;
    RawAgent t_agent;
    add_output_flags(trace, t_out, true);
    add_filter_flags(trace, t_filter, true);
    trace->add_option("--events", t_events,
                      "Event kinds: reset,timeout,keepalive,connection,summary,all (default "
                      "reset,timeout,summary)");
    trace->add_option("--duration", t_duration, "Stop after this long (500ms, 30s, 5m, 1h)");
    trace->add_option("--count", t_count, "Stop after this many events");
    trace->add_option("--ringbuf-size", t_ringbuf,
                      "BPF ring buffer size, a power of two >= 4K (default 4M)");
    trace->add_option("--max-sockets", t_max_sockets,
                      "Live sockets tracked in the kernel (default 65536)");
    trace->add_option("--middlebox-timeout", t_middlebox,
                      "Idle timeout of the firewall/NAT on the path: a duration or a preset "
                      "(docs/middleboxes.md)");
    trace->add_option("--idle-threshold", t_threshold,
                      "Idle time from which a reset counts as idle-related (default 90% of the "
                      "middlebox timeout, else 60s)");
    add_agent_flags(trace, t_agent);

    // audit
    auto *audit =
        app.add_subcommand("audit", "List current TCP connections and their keepalive state");
    RawOutput a_out;
    RawFilter a_filter;
    std::string a_middlebox;
    add_output_flags(audit, a_out, false);
    add_filter_flags(audit, a_filter, false);
    audit->add_option("--middlebox-timeout", a_middlebox,
                      "Rate each connection's risk against this idle timeout");

    // enforce
    auto *enforce = app.add_subcommand(
        "enforce", "Turn TCP keepalive on for a cgroup's connections whose applications never "
                   "enabled it (docs/enforce.md)");
    RawOutput e_out;
    RawEnforce e;
    add_output_flags(enforce, e_out, true);
    enforce->add_option("--cgroup", e.cgroup,
                        "cgroup v2 (path, absolute or relative to the cgroup2 mount): its "
                        "connections and those of its descendants");
    enforce->add_option("--idle", e.idle, "Keepalive idle time to apply (TCP_KEEPIDLE), e.g. 60s");
    enforce->add_option("--interval", e.interval,
                        "Time between probes (TCP_KEEPINTVL); default: the netns sysctl");
    enforce->add_option("--probes", e.probes,
                        "Unanswered probes before the connection is dropped (TCP_KEEPCNT); "
                        "default: the netns sysctl");
    enforce->add_option("--mode", e.mode,
                        "unset-only (default): only where the application left keepalive off; "
                        "always: also lower a longer keepalive idle");
    enforce->add_option("--middlebox-timeout", e.middlebox,
                        "Idle timeout of the firewall/NAT on the path; --idle must be shorter");
    enforce->add_flag("--existing", e.existing,
                      "Also apply to the cgroup's connections established before enforcement "
                      "starts");
    enforce->add_flag("--dry-run", e.dry_run, "Change nothing; report what would change");
    enforce->add_flag("--pin", e.pin,
                      "Keep enforcing after rstwatch exits (links pinned under "
                      "/sys/fs/bpf/rstwatch/enforce); rstwatch exits once enforcement is in "
                      "place, or after --duration");
    enforce->add_option("--duration", e.duration, "Stop after this long (500ms, 30s, 5m, 1h)");
    enforce->add_flag("--remove", e.remove, "Remove the pinned enforcement of --cgroup");
    enforce->add_flag("--status", e.status,
                      "List active enforcements (of --cgroup and its descendants if given)");

    // doctor
    auto *doctor = app.add_subcommand(
        "doctor", "Check keepalive and conntrack settings against middlebox idle timeouts");
    RawOutput d_out;
    std::string d_middlebox, d_root;
    bool d_all_netns = false;
    add_output_flags(doctor, d_out, false);
    doctor->add_option("--middlebox-timeout", d_middlebox,
                       "Idle timeout of the firewall/NAT on the path: a duration or a preset "
                       "(docs/middleboxes.md)");
    doctor->add_flag("--all-netns", d_all_netns,
                     "Check every named network namespace and every one a process runs in");
    doctor->add_option("--root", d_root,
                       "Read /proc and /etc under this directory instead (tests, offline copies)");

    // report
    auto *report = app.add_subcommand(
        "report", "Summarise rstwatch NDJSON from many hosts (files, gzip or stdin)");
    RawOutput r_out;
    std::string r_middlebox;
    std::vector<std::string> r_inputs;
    add_output_flags(report, r_out, false);
    report->add_option("--middlebox-timeout", r_middlebox,
                       "Known idle timeout of the middlebox: compared with the inferred bound");
    report->add_option("inputs", r_inputs,
                       "NDJSON files, plain or gzip (default: stdin; - is stdin)");

    // CLI11 reports a mistyped subcommand as "a subcommand is required";
    // name the word instead.
    for (const auto &a : args) {
        if (!a.empty() && a[0] == '-') {
            // Only the global flags may come before the subcommand; anything else
            // would make its value look like a subcommand name.
            const std::string name = a.substr(0, a.find('='));
            if (name == "-v" || name == "--verbose" || name == "-h" || name == "--help" ||
                name == "-V" || name == "--version" || name == "--help-all")
                continue;
            throw UsageError("unknown option '" + shown(a) +
                             "' before the subcommand (subcommand options go after it, e.g. "
                             "rstwatch trace " +
                             shown(a) + " ...; see rstwatch --help)");
        }
        if (a.empty()) continue;
        bool known = false;
        for (const auto *sub : app.get_subcommands([](CLI::App *) { return true; }))
            known = known || sub->get_name() == a;
        if (!known) throw UsageError("unknown subcommand '" + shown(a) + "' (see rstwatch --help)");
        break;
    }
    // Unknown options and stray words are kept (not thrown by CLI11) so that the
    // message names them in order, with the subcommand that rejected them.
    const auto subs = app.get_subcommands([](CLI::App *) { return true; });
    for (auto *sub : subs)
        sub->allow_extras();
    std::vector<std::string> rev(args.rbegin(), args.rend());
    try {
        app.parse(rev);
    } catch (const CLI::CallForHelp &) {
        out << app.help();
        return {std::nullopt, 0, verbose};
    } catch (const CLI::CallForAllHelp &) {
        out << app.help("", CLI::AppFormatMode::All);
        return {std::nullopt, 0, verbose};
    } catch (const CLI::CallForVersion &) {
        out << "rstwatch " << RSTWATCH_VERSION << "\n";
        return {std::nullopt, 0, verbose};
    } catch (const CLI::ArgumentMismatch &e) {
        for (auto *sub : subs)
            for (const auto *opt : sub->get_options())
                if (opt->count() > 1) {
                    std::string values;
                    for (const auto &v : opt->results())
                        values += (values.empty() ? "'" : ", '") + shown(v) + "'";
                    throw UsageError(opt->get_name() + " given " + std::to_string(opt->count()) +
                                     " times (" + values + "): give it once");
                }
        throw UsageError(shown(e.what()) + " (see rstwatch --help)");
    } catch (const CLI::RequiredError &e) {
        std::string names;
        for (auto *sub : subs)
            names += (names.empty() ? "" : ", ") + sub->get_name();
        throw UsageError("a subcommand is required, one of: " + names + " (see rstwatch --help)");
    } catch (const CLI::ParseError &e) {
        std::string msg = e.what();
        if (msg.empty()) msg = e.get_name();
        throw UsageError(shown(msg) + " (see rstwatch --help)");
    }

    for (auto *sub : subs) {
        if (!sub->parsed()) continue;
        auto extra = sub->remaining();
        if (!extra.empty()) {
            const std::string &a = extra.front();
            throw UsageError(
                (a.size() > 1 && a[0] == '-' ? "unknown option '" : "unexpected argument '") +
                shown(a) + "' for rstwatch " + sub->get_name() + " (see rstwatch " +
                sub->get_name() + " --help)");
        }
        // A flag given with an empty value is an error, not "unset".
        for (const auto *opt : sub->get_options())
            if (opt->count() > 0 && opt->get_type_size() != 0 && !opt->results().empty() &&
                opt->results().back().empty())
                bad(opt->get_name(), "", "a value");
    }

    CliResult res;
    res.verbose = verbose;
    if (trace->parsed()) {
        if (!t_agent.config.empty()) origin = {t_agent.config, merge_config(trace, t_agent.config)};
        TraceOptions o;
        o.out = finish_output(t_out);
        o.filter = finish_filter(t_filter);
        if (!t_events.empty()) o.events = parse_events(t_events);
        if (!t_duration.empty()) o.duration = parse_dur("--duration", t_duration);
        if (!t_count.empty())
            o.count = parse_uint<std::uint64_t>("--count", t_count, 1, std::uint64_t(1) << 62,
                                                "a number of events");
        if (!t_ringbuf.empty()) {
            // The kernel wants a power of two that is a multiple of the page size.
            const std::uint64_t page = std::uint64_t(sysconf(_SC_PAGESIZE));
            auto s = parse_size(t_ringbuf);
            if (!s || *s < page || *s > (1ull << 30) || (*s & (*s - 1)))
                bad("--ringbuf-size", t_ringbuf,
                    "a power of two between the page size (" + std::to_string(page / 1024) +
                        "K) and 1G, such as 4M");
            o.ringbuf_size = *s;
        }
        if (!t_max_sockets.empty())
            o.max_sockets = parse_uint<std::uint32_t>("--max-sockets", t_max_sockets, 1024,
                                                      1u << 24, "a number of sockets");
        if (!t_middlebox.empty())
            o.middlebox_timeout = parse_middlebox("--middlebox-timeout", t_middlebox);
        if (!t_threshold.empty())
            o.idle_threshold = parse_dur("--idle-threshold", t_threshold, true);
        // Options that cannot both hold.
        if (o.filter.verdict && !(o.events & (RW_EMIT_RESET | RW_EMIT_TIMEOUT)))
            throw UsageError("--verdict " + shown(t_filter.verdict) +
                             " filters tcp_reset and tcp_timeout events, but --events " +
                             shown(t_events) +
                             " selects neither: add reset or timeout to --events");
        finish_agent(t_agent, o);
        if (t_agent.check_config) {
            out << "rstwatch trace: configuration is valid"
                << (o.config_path.empty() ? "" : " (" + o.config_path + ")") << "\n";
            return {std::nullopt, 0, verbose};
        }
        if (!o.config_path.empty()) o.cli_args = args;
        res.command = std::move(o);
    } else if (audit->parsed()) {
        AuditOptions o;
        o.out = finish_output(a_out);
        o.filter = finish_filter(a_filter);
        if (!a_middlebox.empty())
            o.middlebox_timeout = parse_middlebox("--middlebox-timeout", a_middlebox);
        res.command = std::move(o);
    } else if (enforce->parsed()) {
        res.command = finish_enforce(e, e_out);
    } else if (doctor->parsed()) {
        DoctorOptions o;
        o.out = finish_output(d_out);
        if (!d_middlebox.empty())
            o.middlebox_timeout = parse_middlebox("--middlebox-timeout", d_middlebox);
        if (!d_root.empty()) {
            std::error_code ec;
            if (!std::filesystem::is_directory(d_root, ec)) bad("--root", d_root, "a directory");
            o.root = d_root;
        }
        o.all_netns = d_all_netns;
        res.command = std::move(o);
    } else if (report->parsed()) {
        ReportOptions o;
        o.out = finish_output(r_out);
        o.inputs = r_inputs;
        if (!r_middlebox.empty())
            o.middlebox_timeout = parse_middlebox("--middlebox-timeout", r_middlebox);
        res.command = std::move(o);
    }
    return res;
}

} // namespace

CliResult parse_cli(const std::vector<std::string> &args, std::ostream &out) {
    ConfigOrigin origin;
    try {
        return parse_cli_impl(args, out, origin);
    } catch (const UsageError &e) {
        const std::string msg = e.what();
        for (const auto &[flag, line] : origin.lines)
            if (msg.find(" for " + flag + ":") != std::string::npos ||
                msg.rfind(flag + " ", 0) == 0)
                throw UsageError(msg + " (set in --config " + origin.path + " line " +
                                 std::to_string(line) + ")");
        throw;
    }
}

TraceOptions reload_trace_options(const TraceOptions &running) {
    std::ostringstream ignored;
    CliResult r = parse_cli(running.cli_args, ignored);
    if (!r.command || !std::holds_alternative<TraceOptions>(*r.command))
        throw UsageError("the command line no longer describes a trace session");
    return std::get<TraceOptions>(std::move(*r.command));
}

} // namespace rstwatch
