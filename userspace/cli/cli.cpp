#include "cli/cli.hpp"

#include <CLI/CLI.hpp>
#include <map>
#include <sstream>

#include "cli/flags.hpp"
#include "cli/values.hpp"
#include "agent/config_file.hpp"
#include "probe/probe_cli.hpp"
#include "util/cgroup_fs.hpp"
#include "util/error.hpp"
#include "rstwatch/version.hpp"

namespace rstwatch {

namespace {

// Where flags set by --config came from, to name the line in error messages.
struct ConfigOrigin {
    std::string path;
    std::map<std::string, unsigned> lines; // flag -> line
};

// " (set in --config PATH line N)", appended to an error about a flag the file set.
std::string config_note(const std::string &path, unsigned line) {
    return " (set in --config " + path + " line " + std::to_string(line) + ")";
}

void resolve_filter_cgroup(FilterOptions &f) {
    if (!f.cgroup.empty()) resolve_cgroup(f.cgroup, f.cgroup_id, f.cgroup_level);
}

// The --config line that set `key`, unless the command line did (it wins; the
// first line with the key is the one merge_config used).
std::optional<unsigned> config_line(const TraceOptions &o, const std::string &key) {
    if (o.config_path.empty()) return std::nullopt;
    const std::string flag = "--" + key;
    for (const auto &a : o.cli_args)
        if (a == flag || a.rfind(flag + "=", 0) == 0) return std::nullopt;
    try {
        for (const ConfigEntry &e : load_config_file(o.config_path))
            if (e.key == key) return e.line;
    } catch (const UsageError &) {
        // Unreadable now: the error is still the value's, without the line.
    }
    return std::nullopt;
}

std::vector<CLI::App *> subcommands(CLI::App &app) {
    return app.get_subcommands([](CLI::App *) { return true; });
}

// CLI11 reports a mistyped subcommand as "a subcommand is required"; name the
// word instead. Only the global flags may come before the subcommand; anything
// else would make its value look like a subcommand name.
void check_words_before_subcommand(CLI::App &app, const std::vector<std::string> &args) {
    for (const auto &a : args) {
        if (!a.empty() && a[0] == '-') {
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
        for (const auto *sub : subcommands(app))
            known = known || sub->get_name() == a;
        if (!known) throw UsageError("unknown subcommand '" + shown(a) + "' (see rstwatch --help)");
        break;
    }
}

// Runs CLI11; false when help or the version was printed. CLI11's errors
// become one-line UsageErrors.
bool run_parser(CLI::App &app, const std::vector<std::string> &args, std::ostream &out) {
    // Unknown options and stray words are kept (not thrown by CLI11) so that the
    // message names them in order, with the subcommand that rejected them.
    const auto subs = subcommands(app);
    for (auto *sub : subs)
        sub->allow_extras();
    std::vector<std::string> rev(args.rbegin(), args.rend());
    try {
        app.parse(rev);
    } catch (const CLI::CallForHelp &) {
        out << app.help();
        return false;
    } catch (const CLI::CallForAllHelp &) {
        out << app.help("", CLI::AppFormatMode::All);
        return false;
    } catch (const CLI::CallForVersion &) {
        out << "rstwatch " << RSTWATCH_VERSION << "\n";
        return false;
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
    return true;
}

// Words CLI11 kept as extras, and flags given an empty value, are errors.
void reject_leftovers(CLI::App &app) {
    for (auto *sub : subcommands(app)) {
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
}

CliResult parse_cli_impl(const std::vector<std::string> &args, std::ostream &out,
                         ConfigOrigin &origin) {
    CLI::App app{"rstwatch: explains TCP resets and idle-connection deaths with eBPF", "rstwatch"};
    app.require_subcommand(1);
    app.set_version_flag("-V,--version", std::string("rstwatch ") + RSTWATCH_VERSION);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "Debug logging on stderr (includes libbpf messages)");
    RawTrace t;
    RawAudit a;
    RawEnforce e;
    RawDoctor d;
    RawReport r;
    RawVerify v;
    auto *trace = add_trace_command(app, t);
    auto *audit = add_audit_command(app, a);
    auto *enforce = add_enforce_command(app, e);
    auto *doctor = add_doctor_command(app, d);
    auto *report = add_report_command(app, r);
    auto *verify = add_verify_command(app, v);
    // probe: its flags live in userspace/probe/probe_cli.cpp.
    ProbeCliRaw p;
    auto *probe = add_probe_subcommand(app, p);

    check_words_before_subcommand(app, args);
    if (!run_parser(app, args, out)) return {std::nullopt, 0, verbose};
    reject_leftovers(app);

    CliResult res;
    res.verbose = verbose;
    if (trace->parsed()) {
        if (!t.agent.config.empty()) origin = {t.agent.config, merge_config(trace, t.agent.config)};
        TraceOptions o = finish_trace(t);
        if (t.agent.check_config) {
            // Validating is this action's whole job: the filesystem check too.
            resolve_filter_cgroup(o.filter);
            out << "rstwatch trace: configuration is valid"
                << (o.config_path.empty() ? "" : " (" + o.config_path + ")") << "\n";
            return {std::nullopt, 0, verbose};
        }
        if (!o.config_path.empty()) o.cli_args = args;
        res.command = std::move(o);
    } else if (audit->parsed()) {
        res.command = finish_audit(a);
    } else if (enforce->parsed()) {
        res.command = finish_enforce(e);
    } else if (doctor->parsed()) {
        res.command = finish_doctor(d);
    } else if (verify->parsed()) {
        res.command = finish_verify(v);
    } else if (report->parsed()) {
        res.command = finish_report(r);
    } else if (probe->parsed()) {
        res.command = finish_probe_options(p);
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
                throw UsageError(msg + config_note(origin.path, line));
        throw;
    }
}

void resolve_cgroup_option(TraceOptions &o) {
    try {
        resolve_filter_cgroup(o.filter);
    } catch (const UsageError &e) {
        if (auto line = config_line(o, "cgroup"))
            throw UsageError(e.what() + config_note(o.config_path, *line));
        throw;
    }
}

void resolve_cgroup_option(EnforceOptions &o) {
    if (!o.cgroup.empty()) resolve_cgroup(o.cgroup, o.cgroup_id, o.cgroup_level, &o.cgroup_dir);
}

TraceOptions reload_trace_options(const TraceOptions &running) {
    std::ostringstream ignored;
    CliResult r = parse_cli(running.cli_args, ignored);
    if (!r.command || !std::holds_alternative<TraceOptions>(*r.command))
        throw UsageError("the command line no longer describes a trace session");
    return std::get<TraceOptions>(std::move(*r.command));
}

} // namespace rstwatch
