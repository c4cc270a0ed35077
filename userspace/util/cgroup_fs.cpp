#include "util/cgroup_fs.hpp"

#include <filesystem>
#include <fstream>
#include <linux/magic.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <vector>

#include "util/error.hpp"
#include "util/text_safety.hpp"

namespace rstwatch {

namespace {

bool is_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return !s.empty();
}

std::string_view strip_suffix(std::string_view s, std::string_view suffix) {
    if (s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix)
        return s.substr(0, s.size() - suffix.size());
    return s;
}

bool looks_like_uid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? (c != '-') : !is_hex(std::string_view(&c, 1))) return false;
    }
    return true;
}

} // namespace

ContainerIds parse_container_ids(std::string_view path) {
    ContainerIds ids;
    // Walk the components: the container id is the last 64-hex token, with or
    // without a runtime prefix and a .scope suffix.
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        std::string_view comp = path.substr(start, end - start);
        start = end + 1;
        if (comp.empty()) continue;

        std::string_view body = strip_suffix(strip_suffix(comp, ".scope"), ".slice");
        for (std::string_view prefix :
             {"docker-", "cri-containerd-", "crio-", "libpod-", "containerd-"}) {
            if (body.substr(0, prefix.size()) == prefix) {
                body = body.substr(prefix.size());
                break;
            }
        }
        if (body.size() == 64 && is_hex(body)) {
            ids.container_id = std::string(body);
            continue;
        }
        // Pod: "pod<uid>" (cgroupfs driver) or "kubepods-besteffort-pod<uid_>.slice" (systemd).
        auto p = body.rfind("pod");
        if (p != std::string_view::npos && comp.find("kubepods") != std::string_view::npos) {
            std::string uid(body.substr(p + 3));
            for (char &c : uid)
                if (c == '_') c = '-';
            if (looks_like_uid(uid)) ids.pod_uid = uid;
        } else if (body.substr(0, 3) == "pod" && looks_like_uid(body.substr(3))) {
            ids.pod_uid = std::string(body.substr(3));
        }
        if (start > path.size()) break;
    }
    return ids;
}

std::string mount_point_of(std::string_view fstype) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // "... mount_point options - fstype source super_options"
        auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream tail(line.substr(dash + 3));
        std::string type;
        tail >> type;
        if (type != fstype) continue;
        std::istringstream head(line.substr(0, dash));
        std::string id, parent, devno, root, mount;
        head >> id >> parent >> devno >> root >> mount;
        return mount;
    }
    return {};
}

std::string cgroup2_mount_point() {
    return mount_point_of("cgroup2");
}

CgroupResolver::CgroupResolver(std::string root, std::chrono::milliseconds rescan_interval)
    : root_(std::move(root)), rescan_interval_(rescan_interval) {}

std::uint64_t CgroupResolver::id_of(const std::string &dir) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    return st.st_ino;
}

void CgroupResolver::rescan() {
    by_id_.clear();
    if (root_.empty()) return;
    namespace fs = std::filesystem;
    std::error_code ec;
    auto add = [this](const fs::path &p) {
        struct stat st {};
        if (stat(p.c_str(), &st) != 0) return;
        std::string rel = p.string().substr(root_.size());
        if (rel.empty()) rel = "/";
        CgroupInfo info;
        info.ids = parse_container_ids(rel);
        info.path = std::move(rel);
        by_id_.emplace(st.st_ino, std::move(info));
    };
    add(root_);
    for (fs::recursive_directory_iterator
             it(root_, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec)) {
        if (it->is_directory(ec) && !it->is_symlink(ec)) add(it->path());
    }
}

const CgroupInfo *CgroupResolver::lookup(std::uint64_t id) {
    if (id == 0) return nullptr;
    auto it = by_id_.find(id);
    if (it != by_id_.end()) return &it->second;
    auto now = std::chrono::steady_clock::now();
    if (scanned_ && now - last_scan_ < rescan_interval_) return nullptr;
    scanned_ = true;
    last_scan_ = now;
    rescan();
    it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
}

std::string cgroup_v2_path(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
        pos = end + 1;
    }
    return {};
}

const CgroupInfo *CgroupResolver::of_pid(std::uint32_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string path = cgroup_v2_path(text);
    if (path.empty() || root_.empty()) return nullptr;
    return lookup(id_of(path == "/" ? root_ : root_ + path));
}

std::string host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
    return buf;
}

void resolve_cgroup(const std::string &path, std::uint64_t &id, int &level, std::string *dir) {
    std::string root = cgroup2_mount_point();
    if (root.empty())
        throw UsageError("--cgroup " + terminal_safe(path) +
                         ": no cgroup v2 hierarchy is mounted on this host");
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root_path = fs::weakly_canonical(root, ec);
    const std::string root_str = ec ? root : root_path.string();
    auto inside_root = [&](const std::string &s) {
        return s == root_str || (s.size() > root_str.size() && s.rfind(root_str, 0) == 0 &&
                                 (root_str == "/" || s[root_str.size()] == '/'));
    };
    fs::path p(path);
    // Accept a filesystem path below the cgroup2 mount, and a path as
    // /proc/PID/cgroup prints it (relative to the mount). Any other absolute
    // path that exists (a cgroup v1 hierarchy, say) is named for what it is.
    std::vector<fs::path> candidates;
    if (p.is_absolute() && inside_root(fs::weakly_canonical(p, ec).string())) {
        candidates.push_back(p);
    } else {
        candidates.push_back(fs::path(root) / p.relative_path());
        if (p.is_absolute()) candidates.push_back(p);
    }
    fs::path full;
    for (const auto &c : candidates) {
        if (fs::is_directory(c, ec)) {
            full = fs::weakly_canonical(c, ec);
            if (!ec) break;
            full.clear();
        }
    }
    const std::string expected = "an existing cgroup v2 directory (absolute, or relative to " +
                                 root + ", as /proc/PID/cgroup shows it)";
    if (full.empty()) throw_bad_value("--cgroup", path, expected);
    struct statfs sfs {};
    if (statfs(full.c_str(), &sfs) != 0) throw_bad_value("--cgroup", path, expected);
    if (sfs.f_type == CGROUP_SUPER_MAGIC)
        throw_bad_value(
            "--cgroup", path,
            "a cgroup v2 directory: this one is in a cgroup v1 hierarchy (v2 is mounted at " +
                root + ")");
    if (sfs.f_type != CGROUP2_SUPER_MAGIC)
        throw_bad_value(
            "--cgroup", path,
            "a cgroup v2 directory: this one is not on a cgroup filesystem (v2 is mounted at " +
                root + ")");
    if (!inside_root(full.string()))
        throw_bad_value("--cgroup", path, "a directory inside the cgroup v2 mount " + root);
    std::string rel = full.string().substr(root_str.size());
    id = CgroupResolver::id_of(full.string());
    level = 0;
    for (char c : rel)
        if (c == '/') ++level;
    if (dir) *dir = full.string();
}

} // namespace rstwatch
