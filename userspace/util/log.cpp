#include "util/log.hpp"

#include "util/text_safety.hpp"

#include <cstdio>
#include <string>
#include <unistd.h>

namespace rstwatch {

namespace {
LogLevel g_level = LogLevel::warn;
}

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
    // Messages quote untrusted text (paths, names, libbpf output): no control
    // characters reach the terminal, newlines between lines excepted.
    append_terminal_safe(line, msg, /*keep_newlines=*/true);
    if (line.empty() || line.back() != '\n') line += '\n';
    // One write(2) per message so concurrent writers do not interleave lines.
    ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

} // namespace rstwatch
