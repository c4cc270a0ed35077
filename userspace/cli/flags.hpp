// The subcommands' flags for CLI11: each subcommand's values as typed (Raw*),
// the function that declares its flags, and the one that validates the typed
// values into its options struct (event/options.hpp). Internal to cli/.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "event/options.hpp"

namespace CLI {
class App;
}

namespace rstwatch {

// Raw strings as typed, so that every value gets the same kind of message.
struct RawOutput {
    std::string format = "json", color = "auto", output, rotate_size, rotate_keep;
};
struct RawFilter {
    std::string pid, comm, port, netns, cgroup, min_idle, verdict;
};
// Agent mode: config file, periodic audit, rate limit, metrics.
struct RawAgent {
    std::string config, audit_interval, max_eps, metrics_listen, metrics_top;
    bool check_config = false;
};

struct RawTrace {
    RawOutput out;
    RawFilter filter;
    std::string events, duration, count, ringbuf, max_sockets, middlebox, threshold;
    RawAgent agent;
};
struct RawAudit {
    RawOutput out;
    RawFilter filter;
    std::string middlebox;
};
// `rstwatch enforce` as typed.
struct RawEnforce {
    RawOutput out;
    std::string cgroup, idle, interval, probes, mode, middlebox, duration;
    bool existing = false, dry_run = false, pin = false, remove = false, status = false;
};
struct RawDoctor {
    RawOutput out;
    std::string middlebox, root;
    bool all_netns = false;
};
struct RawReport {
    RawOutput out;
    std::string middlebox;
    std::vector<std::string> inputs;
};

// Each declares a subcommand and its flags on `app`, bound to `r`.
CLI::App *add_trace_command(CLI::App &app, RawTrace &r);
CLI::App *add_audit_command(CLI::App &app, RawAudit &r);
CLI::App *add_enforce_command(CLI::App &app, RawEnforce &r);
CLI::App *add_doctor_command(CLI::App &app, RawDoctor &r);
CLI::App *add_report_command(CLI::App &app, RawReport &r);

// Each validates what was typed; throws UsageError naming the flag.
TraceOptions finish_trace(const RawTrace &r);
AuditOptions finish_audit(const RawAudit &r);
EnforceOptions finish_enforce(const RawEnforce &r);
DoctorOptions finish_doctor(const RawDoctor &r);
ReportOptions finish_report(const RawReport &r);

// --config: every `key = value` becomes `--key value` for the options the
// command line did not set (the command line wins). Returns which flags came
// from the file (flag -> line), to say so in error messages.
std::map<std::string, unsigned> merge_config(CLI::App *cmd, const std::string &path);

} // namespace rstwatch
