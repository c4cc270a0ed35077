// --config PATH: the flags of `rstwatch trace` in a file, one `key = value` per
// line (docs/agent.md). Keys are the long flag names without the dashes, so
// the file needs no documentation of its own and every value goes through the
// same validation as on the command line. Parsed here; merged by the CLI stage.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rstwatch {

struct ConfigEntry {
    std::string key;   // "max-events-per-sec"
    std::string value; // unquoted
    unsigned line = 0;
};

// Format:
//   # comment (a line whose first non-blank character is '#')
//   key = value            (blanks around '=' and at both ends are ignored)
//   key = "value"          (double quotes keep blanks and '#'; \" and \\ inside)
// Keys: lower-case letters, digits and '-'; each at most once. Throws
// UsageError("PATH line N: ...") naming what is wrong.
std::vector<ConfigEntry> parse_config_text(std::string_view text, const std::string &path);

// Reads and parses a file. Refuses files other users may write (the agent runs
// privileged and the file chooses where it writes).
std::vector<ConfigEntry> load_config_file(const std::string &path);

} // namespace rstwatch
