#include "util/log.hpp"

#include "util/text_safety.hpp"

#include <cstdio>
#include <ctime>
#include <string>
#include <unistd.h>

namespace rstwatch {

namespace {
LogLevel g_level = LogLevel::warn;

double monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}
// Debug lines carry the time since the process started (static init, ~1 ms
// after exec), so `-v` shows where start-up goes: libbpf's BTF parse, CO-RE,
// each program's load, attach, seeding (docs/PERFORMANCE.md, section 3).
const double g_start_ms = monotonic_ms();
} // namespace

void set_log_level(LogLevel level) {
    g_level = level;
}
LogLevel log_level() {
    return g_level;
}

void log(LogLevel level, std::string_view msg) {
    if (level > g_level) return;
    static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
    std::string line = "rstwatch: ";
    line += prefix[int(level)];
    if (level == LogLevel::debug) {
        char when[32];
        std::snprintf(when, sizeof(when), "[%8.2f ms] ", monotonic_ms() - g_start_ms);
        line += when;
    }
    // Messages quote untrusted text (paths, names, libbpf output): no control
    // characters reach the terminal, newlines between lines excepted.
    append_terminal_safe(line, msg, /*keep_newlines=*/true);
    if (line.empty() || line.back() != '\n') line += '\n';
    // One write(2) per message so concurrent writers do not interleave lines.
    ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

} // namespace rstwatch
