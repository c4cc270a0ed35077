// Diagnostics on stderr (never on stdout, which carries events).
#pragma once

#include <string_view>

namespace rstwatch {

enum class LogLevel { error, warn, info, debug };

void set_log_level(LogLevel level);
LogLevel log_level();
void log(LogLevel level, std::string_view msg);
inline void log_error(std::string_view m) {
    log(LogLevel::error, m);
}
inline void log_warn(std::string_view m) {
    log(LogLevel::warn, m);
}
inline void log_info(std::string_view m) {
    log(LogLevel::info, m);
}
inline void log_debug(std::string_view m) {
    log(LogLevel::debug, m);
}

} // namespace rstwatch
