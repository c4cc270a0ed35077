// cgroup v2 filesystem helpers (what the enrich stage adds to events): ids to
// paths, container / pod ids, the mount point, --cgroup resolution, host name.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rstwatch {

struct ContainerIds {
    std::string container_id; // 64 hex digits (docker, containerd, cri-o, podman), or empty
    std::string pod_uid;      // Kubernetes pod UID, or empty
};

// Pure: recognises docker-<id>.scope, /docker/<id>, cri-containerd-<id>.scope,
// crio-<id>.scope, libpod-<id>.scope, kubepods*/pod<uid>/<id>, and
// kubepods-*-pod<uid_with_underscores>.slice.
ContainerIds parse_container_ids(std::string_view cgroup_path);

struct CgroupInfo {
    std::string path; // relative to the cgroup v2 root, starting with "/"
    ContainerIds ids;
};

// Path of the cgroup v2 mount (from /proc/self/mountinfo), empty if none.
// First mount point of a filesystem type in /proc/self/mountinfo; "" if none.
std::string mount_point_of(std::string_view fstype);
std::string cgroup2_mount_point();

// Maps cgroup v2 ids (the cgroup directory's inode number) to paths. Rescans
// the hierarchy on a miss, at most once per `rescan_interval`.
class CgroupResolver {
  public:
    explicit CgroupResolver(std::string root = cgroup2_mount_point(),
                            std::chrono::milliseconds rescan_interval = std::chrono::seconds(1));
    // nullptr when the id is unknown (cgroup removed, or 0).
    const CgroupInfo *lookup(std::uint64_t id);
    // The cgroup v2 of a running process (/proc/PID/cgroup); nullptr once it exited.
    const CgroupInfo *of_pid(std::uint32_t pid);
    const std::string &root() const { return root_; }
    // Id of a cgroup directory (its inode); 0 if it is not a directory.
    static std::uint64_t id_of(const std::string &dir);

  private:
    void rescan();

    std::string root_;
    std::chrono::milliseconds rescan_interval_;
    std::chrono::steady_clock::time_point last_scan_{};
    bool scanned_ = false;
    std::unordered_map<std::uint64_t, CgroupInfo> by_id_;
};

// The cgroup v2 path in the text of /proc/PID/cgroup (the "0::" line), or "".
std::string cgroup_v2_path(std::string_view proc_pid_cgroup);

std::string host_name();

// Resolves a cgroup v2 path (absolute, or relative to the cgroup2 mount) to
// its id and depth (and, if dir is given, its absolute directory). Throws
// UsageError naming --cgroup if it does not exist or is not cgroup v2.
void resolve_cgroup(const std::string &path, std::uint64_t &id, int &level,
                    std::string *dir = nullptr);

} // namespace rstwatch
