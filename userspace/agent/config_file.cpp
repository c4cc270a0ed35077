#include "agent/config_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "util/error.hpp"

namespace rstwatch {

namespace {

std::string_view trim(std::string_view s) {
    const char *ws = " \t\r";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

bool valid_key(std::string_view k) {
    if (k.empty() || k.front() == '-') return false;
    for (char c : k)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

} // namespace

std::vector<ConfigEntry> parse_config_text(std::string_view text, const std::string &path) {
    std::vector<ConfigEntry> out;
    std::set<std::string, std::less<>> seen;
    unsigned lineno = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        std::string_view raw =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++lineno;
        auto fail = [&](const std::string &what) -> void {
            throw UsageError("--config " + path + " line " + std::to_string(lineno) + ": " + what);
        };
        std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#') continue;
        auto eq = line.find('=');
        if (eq == std::string_view::npos)
            fail("expected 'key = value', got '" + std::string(line) + "'");
        std::string_view key = trim(line.substr(0, eq));
        std::string_view val = trim(line.substr(eq + 1));
        if (key.size() > 2 && key.substr(0, 2) == "--") key.remove_prefix(2);
        if (!valid_key(key))
            fail("'" + std::string(key) +
                 "' is not a key (use a long flag name of rstwatch trace, such as rotate-size)");
        std::string value;
        if (!val.empty() && val.front() == '"') {
            std::size_t i = 1;
            bool closed = false;
            for (; i < val.size(); ++i) {
                char c = val[i];
                if (c == '\\' && i + 1 < val.size() && (val[i + 1] == '"' || val[i + 1] == '\\')) {
                    value += val[++i];
                } else if (c == '"') {
                    closed = true;
                    break;
                } else {
                    value += c;
                }
            }
            if (!closed) fail("unterminated quoted value for " + std::string(key));
            if (!trim(val.substr(i + 1)).empty())
                fail("text after the closing quote of " + std::string(key));
        } else {
            value = std::string(val);
        }
        if (value.empty()) fail("no value for " + std::string(key));
        if (!seen.insert(std::string(key)).second)
            fail(std::string(key) + " is set more than once");
        out.push_back(ConfigEntry{std::string(key), std::move(value), lineno});
    }
    return out;
}

std::vector<ConfigEntry> load_config_file(const std::string &path) {
    std::ifstream in(path);
    if (!in) throw UsageError("--config " + path + ": cannot read it: " + std::strerror(errno));
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) {
        if (!S_ISREG(st.st_mode)) throw UsageError("--config " + path + ": not a regular file");
        if (st.st_mode & S_IWOTH)
            throw UsageError("--config " + path +
                             ": writable by every user; the agent runs privileged, so fix it "
                             "with: chmod o-w " +
                             path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config_text(ss.str(), path);
}

} // namespace rstwatch
