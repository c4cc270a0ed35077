#include "cli/values.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include "util/middlebox.hpp"
#include "util/text_safety.hpp"
#include "util/units.hpp"

namespace rstwatch {

std::string shown(std::string_view v) {
    return terminal_safe(v);
}

milliseconds parse_dur(const std::string &flag, const std::string &v, bool allow_zero,
                       DurationLimit limit) {
    auto d = parse_duration(v);
    if (!d || (!allow_zero && d->count() == 0) || *d > limit.max)
        bad(flag, v,
            std::string("a duration from ") + (allow_zero ? "0" : "1ms") + " to " + limit.label +
                ", such as 500ms, 30s, 5m or 1h");
    return *d;
}

milliseconds parse_middlebox(const std::string &flag, const std::string &v) {
    auto d = parse_middlebox_timeout(v);
    if (!d || *d > kMaxDuration.max) {
        std::string names;
        for (const auto &p : middlebox_presets())
            names += (names.empty() ? "" : ", ") + std::string(p.name);
        bad(flag, v,
            std::string("a duration up to ") + kMaxDuration.label +
                " (350s, 4m) or one of: " + names);
    }
    return *d;
}

void check_output_path(const std::string &path) {
    auto fail = [&](const std::string &expected, int err) {
        bad("--output", path, expected + (err ? std::string(" (") + std::strerror(err) + ")" : ""));
    };
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) fail("a file, not a directory", 0);
        if (S_ISBLK(st.st_mode)) fail("a regular file, not a block device", 0);
        if (S_ISFIFO(st.st_mode)) return; // opening would wait for a reader
        int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) fail("a file rstwatch can append to", errno);
        close(fd);
        return;
    }
    if (errno != ENOENT) fail("a file in an accessible directory", errno);
    std::filesystem::path p(path);
    std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        fail("a file in an existing directory", 0);
    // An unnamed file in that directory: what creating the real one needs
    // (write permission, a writable filesystem), and nothing is left behind.
    int fd = open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
    if (fd >= 0) {
        close(fd);
        return;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        fail("a file in a writable directory", errno);
    // Filesystems without O_TMPFILE (procfs, sysfs, NFS): create it and remove it.
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT) fail("a file in a directory that allows new files", 0);
    if (fd < 0) fail("a file in a writable directory", errno);
    close(fd);
    unlink(path.c_str());
}

ListenAddress parse_listen(const std::string &flag, const std::string &v) {
    const char *expected = "PORT (on 127.0.0.1) or ADDR:PORT with a numeric address, such as "
                           "9478, 127.0.0.1:9478, 0.0.0.0:9478 or [::1]:9478";
    ListenAddress a;
    std::string port = v;
    a.host = "127.0.0.1";
    if (!v.empty() && v.front() == '[') {
        auto close = v.find("]:");
        if (close == std::string::npos) bad(flag, v, expected);
        a.host = v.substr(1, close - 1);
        port = v.substr(close + 2);
        in6_addr a6{};
        if (inet_pton(AF_INET6, a.host.c_str(), &a6) != 1) bad(flag, v, expected);
    } else if (auto colon = v.rfind(':'); colon != std::string::npos) {
        a.host = v.substr(0, colon);
        port = v.substr(colon + 1);
        in_addr a4{};
        if (inet_pton(AF_INET, a.host.c_str(), &a4) != 1) bad(flag, v, expected);
    }
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc() || p != port.data() + port.size() || n < 1 || n > 65535)
        bad(flag, v, expected);
    a.port = std::uint16_t(n);
    return a;
}

std::uint32_t parse_keepalive_seconds(const std::string &flag, const std::string &v,
                                      const char *option) {
    auto d = parse_duration(v);
    const std::string expected = std::string("a whole number of seconds from 1s to 32767s (the "
                                             "kernel's ") +
                                 option + " range)";
    if (!d || d->count() % 1000 != 0 || d->count() < 1000 || d->count() > 32767 * 1000)
        bad(flag, v, expected);
    return std::uint32_t(d->count() / 1000);
}

std::uint32_t parse_events(const std::string &list) {
    std::uint32_t mask = 0;
    std::stringstream ss(list);
    std::string item;
    bool any = false;
    while (std::getline(ss, item, ',')) {
        any = true;
        if (item == "reset")
            mask |= RW_EMIT_RESET;
        else if (item == "timeout")
            mask |= RW_EMIT_TIMEOUT;
        else if (item == "keepalive")
            mask |= RW_EMIT_KEEPALIVE;
        else if (item == "connection")
            mask |= RW_EMIT_CONNECTION;
        else if (item == "summary")
            mask |= kEventSummary;
        else if (item == "all")
            mask |= RW_EMIT_RESET | RW_EMIT_TIMEOUT | RW_EMIT_KEEPALIVE | RW_EMIT_CONNECTION |
                    kEventSummary;
        else
            bad("--events", list,
                "a comma-separated list of reset, timeout, keepalive, connection, summary, all");
    }
    if (!any)
        bad("--events", list,
            "a comma-separated list of reset, timeout, keepalive, connection, summary, all");
    return mask;
}

} // namespace rstwatch
