// doctor, reading: sysctl.d files and /proc/sys of one network namespace.
#include "doctor/doctor.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace rstwatch::doctor {

namespace fs = std::filesystem;

namespace {

std::string_view trim(std::string_view s) {
    const char *ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

// Reads a small text file; empty when missing or unreadable.
std::optional<std::string> read_file(const fs::path &p, std::size_t limit = 1 << 20) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::string data(limit, '\0');
    in.read(data.data(), std::streamsize(limit));
    data.resize(std::size_t(in.gcount()));
    return data;
}

// root + an absolute system path.
fs::path under(const std::string &root, std::string_view path) {
    if (root.empty() || root == "/") return fs::path(path);
    return fs::path(root) / fs::path(path).relative_path();
}

} // namespace

std::optional<std::int64_t> sysctl_int(std::string_view s) {
    s = trim(s);
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string normalize_sysctl_key(std::string_view key) {
    std::string k(trim(key));
    auto slash = k.find('/'), dot = k.find('.');
    if (slash != std::string::npos && (dot == std::string::npos || slash < dot)) {
        // '/' separates; a '.' inside a component (an interface name) stays,
        // written the way sysctl(8) prints it: as '/'.
        for (char &c : k)
            c = c == '/' ? '.' : (c == '.' ? '/' : c);
    }
    return k;
}

std::vector<SysctlSetting> parse_sysctl_conf(std::string_view text, const std::string &file) {
    std::vector<SysctlSetting> out;
    int lineno = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = trim(text.substr(pos, nl - pos));
        pos = nl + 1;
        ++lineno;
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '-') line = trim(line.substr(1));
        auto eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        std::string key = normalize_sysctl_key(line.substr(0, eq));
        if (key.empty()) continue;
        out.push_back(SysctlSetting{key, std::string(trim(line.substr(eq + 1))), file, lineno});
        if (nl == text.size()) break;
    }
    return out;
}

std::map<std::string, SysctlSetting> persisted_sysctls(const std::string &root) {
    static constexpr std::array<std::string_view, 5> dirs = {"/etc/sysctl.d", "/run/sysctl.d",
                                                             "/usr/local/lib/sysctl.d",
                                                             "/usr/lib/sysctl.d", "/lib/sysctl.d"};
    // File name -> the path that wins for it (earlier directories mask later).
    std::map<std::string, std::string> chosen;
    for (auto dir : dirs) {
        std::error_code ec;
        for (fs::directory_iterator it(under(root, dir), ec), end; !ec && it != end;
             it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (name.size() < 6 || name.substr(name.size() - 5) != ".conf") continue;
            chosen.emplace(name, std::string(dir) + "/" + name);
        }
    }
    std::vector<std::string> order;
    for (auto &[name, path] : chosen)
        order.push_back(path);
    order.emplace_back("/etc/sysctl.conf");

    std::map<std::string, SysctlSetting> out;
    for (const auto &path : order) {
        fs::path p = under(root, path);
        std::error_code ec;
        // Absolute symlinks point into the system being checked, not ours.
        if (fs::is_symlink(p, ec)) {
            fs::path target = fs::read_symlink(p, ec);
            if (!ec && target == "/dev/null") continue;
            if (!ec && target.is_absolute()) p = under(root, target.string());
        }
        auto text = read_file(p);
        if (!text) continue;
        for (auto &s : parse_sysctl_conf(*text, path))
            out[s.key] = s;
    }
    return out;
}

std::optional<std::int64_t> read_sysctl_int(const std::string &root, std::string_view key) {
    std::string rel(key);
    for (char &c : rel)
        if (c == '.') c = '/';
    auto text = read_file(under(root, "/proc/sys/" + rel), 4096);
    if (!text) return std::nullopt;
    return sysctl_int(*text);
}

NetnsFacts read_netns_facts(const std::string &root) {
    NetnsFacts f;
    f.keepalive_time = read_sysctl_int(root, "net.ipv4.tcp_keepalive_time");
    f.keepalive_intvl = read_sysctl_int(root, "net.ipv4.tcp_keepalive_intvl");
    f.keepalive_probes = read_sysctl_int(root, "net.ipv4.tcp_keepalive_probes");
    f.ct_established = read_sysctl_int(root, "net.netfilter.nf_conntrack_tcp_timeout_established");
    f.conntrack_loaded = f.ct_established.has_value();
    f.ct_count = read_sysctl_int(root, "net.netfilter.nf_conntrack_count");
    f.ct_max = read_sysctl_int(root, "net.netfilter.nf_conntrack_max");
    return f;
}

} // namespace rstwatch::doctor
