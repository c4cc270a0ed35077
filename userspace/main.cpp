// rstwatch: entry point. Parses the command line, runs one subcommand, maps
// errors to exit codes (docs/cli.md).
#include <iostream>
#include <variant>

#include "cli/cli.hpp"
#include "cmd/commands.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

int main(int argc, char **argv) {
    using namespace rstwatch;
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        CliResult cli = parse_cli(args, std::cout);
        if (!cli.command) return cli.exit_code;
        if (cli.verbose) set_log_level(LogLevel::debug);
        return std::visit(
            [](const auto &opts) -> int {
                using T = std::decay_t<decltype(opts)>;
                if constexpr (std::is_same_v<T, TraceOptions>)
                    return run_trace(opts);
                else if constexpr (std::is_same_v<T, EnforceOptions>)
                    return run_enforce(opts);
                else if constexpr (std::is_same_v<T, DoctorOptions>)
                    return run_doctor(opts);
                else if constexpr (std::is_same_v<T, ReportOptions>)
                    return run_report(opts);
                else
                    return run_audit(opts);
            },
            *cli.command);
    } catch (const Error &e) {
        log_error(e.what());
        return int(e.code());
    } catch (const std::exception &e) {
        log_error(std::string("unexpected failure: ") + e.what());
        return int(Exit::runtime);
    }
}
