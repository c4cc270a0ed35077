#include "cli/flags.hpp"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>
#include <unistd.h>

#include "agent/config_file.hpp"
#include "cli/cli.hpp"
#include "cli/values.hpp"
#include "util/units.hpp"

namespace rstwatch {

namespace {

// Each finish_* below validates a Raw* struct; a flag not given is empty (one
// given an empty value was refused by the parser). These return nullopt for a
// flag not given, else the value as the parse_* function of values.hpp checks it.
template <class T>
std::optional<T> opt_uint(const char *flag, const std::string &v, T min, T max, const char *what) {
    if (v.empty()) return std::nullopt;
    return parse_uint<T>(flag, v, min, max, what);
}

std::optional<milliseconds> opt_dur(const char *flag, const std::string &v, bool allow_zero = false,
                                    DurationLimit limit = kMaxDuration) {
    if (v.empty()) return std::nullopt;
    return parse_dur(flag, v, allow_zero, limit);
}

std::optional<milliseconds> opt_middlebox(const std::string &v) {
    if (v.empty()) return std::nullopt;
    return parse_middlebox("--middlebox-timeout", v);
}

// `v` as one of a closed set of names, else a usage error listing them ("a, b or c").
template <class E, std::size_t N>
E one_of(const char *flag, const std::string &v, const std::pair<std::string_view, E> (&names)[N]) {
    std::string expected;
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i].first == v) return names[i].second;
        expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(names[i].first);
    }
    bad(flag, v, expected);
}

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
    o.audit_interval = opt_dur("--audit-interval", r.audit_interval);
    if (o.audit_interval && o.audit_interval->count() < 1000)
        bad("--audit-interval", r.audit_interval, "a duration of at least 1s, such as 5m");
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
    o.format =
        one_of<Format>("--format", r.format, {{"json", Format::json}, {"text", Format::text}});
    o.color =
        one_of<Color>("--color", r.color,
                      {{"auto", Color::auto_}, {"always", Color::always}, {"never", Color::never}});
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
    f.pid = opt_uint<std::uint32_t>("--pid", r.pid, 1, 4194304, "a process id");
    if (!r.comm.empty()) {
        if (r.comm.size() > 15)
            bad("--comm", r.comm, "a process name of at most 15 characters (the kernel's comm)");
        f.comm = r.comm;
    }
    f.port = opt_uint<std::uint16_t>("--port", r.port, 1, 65535, "a port");
    f.netns =
        opt_uint<std::uint32_t>("--netns", r.netns, 1, 0xffffffffu, "a network namespace inode");
    f.min_idle = opt_dur("--min-idle", r.min_idle, true, kMaxIdle);
    if (!r.verdict.empty()) {
        f.verdict = parse_verdict(r.verdict);
        if (!f.verdict)
            bad("--verdict", r.verdict,
                "keepalive_disabled, keepalive_too_slow, not_idle, no_socket, local_abort or "
                "unknown");
    }
    f.cgroup = r.cgroup; // resolved where the command starts (resolve_cgroup_option)
    return f;
}

} // namespace

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

CLI::App *add_trace_command(CLI::App &app, RawTrace &r) {
    auto *trace =
        app.add_subcommand("trace", "Trace TCP resets and timeouts live (NDJSON on stdout)");
    add_output_flags(trace, r.out, true);
    add_filter_flags(trace, r.filter, true);
    trace->add_option("--events", r.events,
                      "Event kinds: reset,timeout,keepalive,connection,summary,all (default "
                      "reset,timeout,summary)");
    trace->add_option("--duration", r.duration, "Stop after this long (500ms, 30s, 5m, 1h)");
    trace->add_option("--count", r.count, "Stop after this many events");
    trace->add_option("--ringbuf-size", r.ringbuf,
                      "BPF ring buffer size, a power of two >= 4K (default 4M)");
    trace->add_option("--max-sockets", r.max_sockets,
                      "Live sockets tracked in the kernel (default 65536)");
    trace->add_option("--middlebox-timeout", r.middlebox,
                      "Idle timeout of the firewall/NAT on the path: a duration or a preset "
                      "(docs/middleboxes.md)");
    trace->add_option("--idle-threshold", r.threshold,
                      "Idle time from which a reset counts as idle-related (default 90% of the "
                      "middlebox timeout, else 60s)");
    add_agent_flags(trace, r.agent);
    return trace;
}

CLI::App *add_audit_command(CLI::App &app, RawAudit &r) {
    auto *audit =
        app.add_subcommand("audit", "List current TCP connections and their keepalive state");
    add_output_flags(audit, r.out, false);
    add_filter_flags(audit, r.filter, false);
    audit->add_option("--middlebox-timeout", r.middlebox,
                      "Rate each connection's risk against this idle timeout");
    return audit;
}

CLI::App *add_enforce_command(CLI::App &app, RawEnforce &e) {
    auto *enforce = app.add_subcommand(
        "enforce", "Turn TCP keepalive on for a cgroup's connections whose applications never "
                   "enabled it (docs/enforce.md)");
    add_output_flags(enforce, e.out, true);
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
    return enforce;
}

CLI::App *add_doctor_command(CLI::App &app, RawDoctor &r) {
    auto *doctor = app.add_subcommand(
        "doctor", "Check keepalive and conntrack settings against middlebox idle timeouts");
    add_output_flags(doctor, r.out, false);
    doctor->add_option("--middlebox-timeout", r.middlebox,
                       "Idle timeout of the firewall/NAT on the path: a duration or a preset "
                       "(docs/middleboxes.md)");
    doctor->add_flag("--all-netns", r.all_netns,
                     "Check every named network namespace and every one a process runs in");
    doctor->add_option("--root", r.root,
                       "Read /proc and /etc under this directory instead (tests, offline copies)");
    return doctor;
}

CLI::App *add_report_command(CLI::App &app, RawReport &r) {
    auto *report = app.add_subcommand(
        "report", "Summarise rstwatch NDJSON from many hosts (files, gzip or stdin)");
    add_output_flags(report, r.out, false);
    report->add_option("--middlebox-timeout", r.middlebox,
                       "Known idle timeout of the middlebox: compared with the inferred bound");
    report->add_option("inputs", r.inputs,
                       "NDJSON files, plain or gzip (default: stdin; - is stdin)");
    return report;
}

CLI::App *add_verify_command(CLI::App &app, RawVerify &r) {
    auto *verify = app.add_subcommand(
        "verify", "Load every BPF program into the running kernel and say which it refuses");
    add_output_flags(verify, r.out, false);
    return verify;
}

TraceOptions finish_trace(const RawTrace &r) {
    TraceOptions o;
    o.out = finish_output(r.out);
    o.filter = finish_filter(r.filter);
    if (!r.events.empty()) o.events = parse_events(r.events);
    o.duration = opt_dur("--duration", r.duration);
    o.count = opt_uint<std::uint64_t>("--count", r.count, 1, std::uint64_t(1) << 62,
                                      "a number of events");
    if (!r.ringbuf.empty()) {
        // The kernel wants a power of two that is a multiple of the page size.
        const std::uint64_t page = std::uint64_t(sysconf(_SC_PAGESIZE));
        auto s = parse_size(r.ringbuf);
        if (!s || *s < page || *s > (1ull << 30) || (*s & (*s - 1)))
            bad("--ringbuf-size", r.ringbuf,
                "a power of two between the page size (" + std::to_string(page / 1024) +
                    "K) and 1G, such as 4M");
        o.ringbuf_size = *s;
    }
    if (!r.max_sockets.empty())
        o.max_sockets = parse_uint<std::uint32_t>("--max-sockets", r.max_sockets, 1024, 1u << 24,
                                                  "a number of sockets");
    o.middlebox_timeout = opt_middlebox(r.middlebox);
    o.idle_threshold = opt_dur("--idle-threshold", r.threshold, true);
    // Options that cannot both hold.
    if (o.filter.verdict && !(o.events & (RW_EMIT_RESET | RW_EMIT_TIMEOUT)))
        throw UsageError("--verdict " + shown(r.filter.verdict) +
                         " filters tcp_reset and tcp_timeout events, but --events " +
                         shown(r.events) + " selects neither: add reset or timeout to --events");
    finish_agent(r.agent, o);
    return o;
}

AuditOptions finish_audit(const RawAudit &r) {
    AuditOptions o;
    o.out = finish_output(r.out);
    o.filter = finish_filter(r.filter);
    o.middlebox_timeout = opt_middlebox(r.middlebox);
    return o;
}

DoctorOptions finish_doctor(const RawDoctor &r) {
    DoctorOptions o;
    o.out = finish_output(r.out);
    o.middlebox_timeout = opt_middlebox(r.middlebox);
    if (!r.root.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(r.root, ec)) bad("--root", r.root, "a directory");
        o.root = r.root;
    }
    o.all_netns = r.all_netns;
    return o;
}

ReportOptions finish_report(const RawReport &r) {
    ReportOptions o;
    o.out = finish_output(r.out);
    o.inputs = r.inputs;
    o.middlebox_timeout = opt_middlebox(r.middlebox);
    return o;
}

VerifyOptions finish_verify(const RawVerify &r) {
    VerifyOptions o;
    o.out = finish_output(r.out);
    return o;
}

EnforceOptions finish_enforce(const RawEnforce &r) {
    EnforceOptions o;
    o.out = finish_output(r.out);
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
        o.cgroup = r.cgroup;
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
    o.probes = opt_uint<std::uint32_t>("--probes", r.probes, 1, 127,
                                       "a number of probes (the kernel's TCP_KEEPCNT)");
    if (!r.mode.empty())
        o.mode = one_of<EnforceMode>(
            "--mode", r.mode,
            {{"unset-only", EnforceMode::unset_only}, {"always", EnforceMode::always}});
    o.middlebox_timeout = opt_middlebox(r.middlebox);
    if (o.middlebox_timeout) {
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
    o.duration = opt_dur("--duration", r.duration);
    o.existing = r.existing;
    o.dry_run = r.dry_run;
    o.pin = r.pin;
    o.cgroup = r.cgroup;
    return o;
}

} // namespace rstwatch
