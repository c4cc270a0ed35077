// Errors that end a command, each carrying the process exit code it maps to.
#pragma once

#include <stdexcept>
#include <string>

namespace rstwatch {

// Exit codes are part of the CLI contract (README, docs/cli.md).
enum class Exit : int {
    ok = 0,
    findings = 1,    // doctor found a failing check
    usage = 2,       // bad command line or input file
    environment = 3, // missing privileges or kernel support
    runtime = 4,     // unexpected failure while running
};

class Error : public std::runtime_error {
  public:
    Error(Exit code, const std::string &what) : std::runtime_error(what), code_(code) {}
    Exit code() const { return code_; }

  private:
    Exit code_;
};

// A bad command line or input value: exit 2, one line naming the flag and value.
class UsageError : public Error {
  public:
    explicit UsageError(const std::string &what) : Error(Exit::usage, what) {}
};

// Throws UsageError "invalid value '<value>' for <flag>: expected <expected>",
// the value and flag made terminal-safe.
[[noreturn]] void throw_bad_value(const std::string &flag, const std::string &value,
                                  const std::string &expected);

// What the host lacks (privileges, BTF, a tracepoint) and how to fix it: exit 3.
class EnvironmentError : public Error {
  public:
    explicit EnvironmentError(const std::string &what) : Error(Exit::environment, what) {}
};

} // namespace rstwatch
