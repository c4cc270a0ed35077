// rstwatch report: reads NDJSON collected from any number of hosts and
// answers the incident's questions fleet-wide (docs/report.md).
#include <csignal>
#include <unistd.h>

#include "cmd/commands.hpp"
#include "util/error.hpp"

#ifdef RW_NO_REPORT
namespace rstwatch {
int run_report(const ReportOptions &) {
    throw EnvironmentError("this static build of rstwatch has no `report` (Debian ships simdjson "
                           "only as a shared library): run it from the regular build");
}
} // namespace rstwatch
#else
#include "util/clock.hpp"
#include "util/cgroup_fs.hpp"
#include "util/log.hpp"
#include "report/report.hpp"
#include "report/format.hpp"
#include "output/sink.hpp"

namespace rstwatch {

int run_report(const ReportOptions &o) {
    signal(SIGPIPE, SIG_IGN);
    const std::vector<std::string> inputs =
        o.inputs.empty() ? std::vector<std::string>{"-"} : o.inputs;
    // Every name is checked before any is read: a typo in the last one should
    // not cost a full read of the others first.
    for (const auto &path : inputs)
        LineReader::check(path);
    if (o.inputs.empty() && isatty(STDIN_FILENO))
        log_warn("report: reading NDJSON from the terminal; give files, or pipe events in "
                 "(Ctrl-D ends the input)");

    ReportEngine engine(o.middlebox_timeout);
    for (const auto &path : inputs) {
        auto reader = LineReader::open(path);
        engine.read(*reader);
    }
    ReportResult result = engine.finish();

    // Each class of skipped input once, however many lines it hit.
    for (std::size_t i = 0; i < kLineProblemCount; ++i) {
        if (!result.problems[i]) continue;
        log_warn("report: skipped " + std::to_string(result.problems[i]) +
                 " input line(s): " + std::string(to_string(LineProblem(i))) + " (first at " +
                 result.first_input[i] + ":" + std::to_string(result.first_line[i]) + ")");
    }

    std::string out;
    if (o.out.format == Format::text)
        format_report_text(result, out);
    else
        format_report_json(result, host_name(), WallClock::real_now_ns(), out);
    make_stdout_sink()->write(out);
    return 0;
}

} // namespace rstwatch
#endif
