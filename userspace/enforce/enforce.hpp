// `rstwatch enforce`: the enforce BPF object (open -> configure -> load ->
// attach to a cgroup -> optionally pin), the start-up iterators, and what
// --status and --remove find in the kernel and under bpffs. Owns every libbpf
// object it creates (RAII); links not pinned are detached when it goes away.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bpf/bpf_util.hpp"
#include "event/options.hpp"
#include "rstwatch/records.h"

struct enforce_bpf;

namespace rstwatch {

struct EnforceCounters {
    std::array<std::uint64_t, RW_ENF_CNT_MAX> v{};
    std::uint64_t operator[](rw_enf_counter c) const { return v[std::size_t(c)]; }
    // Connections changed (or, in a dry run, that would have been).
    std::uint64_t changed() const {
        return v[RW_ENF_CNT_ACTIVE] + v[RW_ENF_CNT_PASSIVE] + v[RW_ENF_CNT_EXISTING] +
               v[RW_ENF_CNT_CLAMP];
    }
};

// ---- privileges ----

// Effective capability set of this process (bit n = capability n); all ones
// when it cannot be read, so that the kernel has the last word.
std::uint64_t effective_capabilities();
// Empty when `effective` holds what `action` needs; else a one-line message
// naming each missing capability and how to grant it. Pure (unit-tested).
std::string enforce_capability_problem(std::uint64_t effective, EnforceAction action);

// ---- pins ----

inline constexpr const char *kBpffsMount = "/sys/fs/bpf";
// Where the links of a pinned enforcement of cgroup `cgroup_id` live. Named by
// cgroup id: unique, and stable while the cgroup is renamed.
std::string enforce_pin_dir(std::uint64_t cgroup_id);
// Mounts bpffs at /sys/fs/bpf when it is not; EnvironmentError saying how if
// that fails.
void ensure_bpffs();
// Names of the pins in a pin directory ("sockops", "setsockopt"); empty when
// there is none.
std::vector<std::string> pinned_links(const std::string &dir);

// ---- the loader ----

struct EnforceSetup {
    rw_enforce_config cfg{};
    std::uint32_t ringbuf_bytes = 1u << 20;
    bool existing = false; // --existing: load the TCP iterator too
};

// One network namespace in which --existing runs the TCP iterator.
struct NetnsRef {
    std::uint64_t inode = 0;
    std::string path; // /proc/PID/ns/net
    bool own = false; // rstwatch's own namespace
};

// Network namespaces used by the processes of a cgroup subtree, plus our own
// (first). `cgroup_dir` is the cgroup's directory.
std::vector<NetnsRef> cgroup_network_namespaces(const std::string &cgroup_dir);

struct ExistingResult {
    std::vector<rw_enforce> records;  // changed (or would-be changed) connections
    std::uint32_t namespaces = 0;     // namespaces scanned
    std::vector<std::string> skipped; // namespaces that could not be entered, with why
};

class Enforcer {
  public:
    // hz_fallback: CONFIG_HZ when libbpf cannot read the kernel config (see
    // hz_fallback() in bpf_util.hpp), 0 otherwise.
    Enforcer(const EnforceSetup &setup, unsigned hz_fallback);
    ~Enforcer();
    Enforcer(const Enforcer &) = delete;
    Enforcer &operator=(const Enforcer &) = delete;

    // Attaches sockops (and, in always mode, cgroup/setsockopt) to the cgroup
    // directory as BPF links: multi-attach, detached by the kernel if we die.
    void attach(const std::string &cgroup_dir);
    // Records the owners of the cgroup's sockets that existed before attach.
    // Returns the number of sockets found.
    std::uint64_t seed_owners();
    // --existing: runs the TCP iterator in each namespace.
    ExistingResult apply_existing(const std::vector<NetnsRef> &namespaces);
    // Pins every link under dir (created). On failure removes what it pinned.
    void pin(const std::string &dir);

    // Ring buffer of struct rw_enforce. on_record may throw: the exception is
    // rethrown by consume().
    void open_ring_buffer(std::function<void(const rw_enforce &)> on_record);
    int ring_epoll_fd() const;
    int consume();
    // A pinned enforcement outliving us stops writing records nobody reads.
    void stop_reporting();
    // Detaches the links (pinned links stay attached through their pins).
    void detach();

    EnforceCounters counters() const;
    // "sockops", and "setsockopt" in always mode.
    std::vector<std::string> programs() const;
    unsigned hz() const { return hz_; }

  private:
    // Opens, configures and loads the object; the libbpf error, 0 on success.
    int load(const EnforceSetup &setup, unsigned hz_fallback, bool caller_sockops,
             bool caller_sockopt);
    bool existing_ok_ = false; // the TCP iterator is loaded (--existing, kernel allows it)
    std::vector<std::uint8_t> run_iterator(int link_fd, const char *what);

    SkelPtr<enforce_bpf> skel_;
    rw_enforce_config cfg_{};
    std::vector<std::pair<std::string, LinkPtr>> links_; // name -> link
    std::unique_ptr<RingReader> ring_;
    std::uint64_t malformed_ = 0;
    unsigned hz_ = 0;
};

// ---- --status and --remove ----

// An enforcement attached somewhere on this host, found through the kernel's
// list of BPF links (ours are recognised by program name).
struct ActiveEnforcement {
    std::uint64_t cgroup_id = 0;
    std::vector<std::string> programs; // "sockops", "setsockopt"
    std::vector<std::uint32_t> link_ids;
    std::optional<rw_enforce_config> config; // absent: written by an incompatible rstwatch
    std::optional<EnforceCounters> counters;
    std::string pin_dir; // empty: not pinned (held by a running rstwatch)
};

// Needs CAP_SYS_ADMIN (the kernel restricts enumerating BPF objects to it).
std::vector<ActiveEnforcement> list_enforcements();

struct RemoveResult {
    std::string pin_dir;
    std::vector<std::string> removed; // names of the links detached and unpinned
};
// Detaches and unpins the pinned enforcement of a cgroup (nothing to do is not
// an error: `removed` is empty).
RemoveResult remove_pinned(std::uint64_t cgroup_id);

// Whether a process is still running (for an installer pid in --status).
bool process_running(std::uint32_t pid);

} // namespace rstwatch
