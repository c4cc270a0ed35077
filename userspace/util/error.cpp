#include "util/error.hpp"

#include "util/text_safety.hpp"

namespace rstwatch {

void throw_bad_value(const std::string &flag, const std::string &value,
                     const std::string &expected) {
    throw UsageError("invalid value '" + terminal_safe(value) + "' for " + terminal_safe(flag) +
                     ": expected " + expected);
}

} // namespace rstwatch
