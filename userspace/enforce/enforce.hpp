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
#include "enforce/status.hpp"
#include "event/options.hpp"
#include "rstwatch/records.h"

struct enforce_bpf;

namespace rstwatch {

// ---- privileges ----

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
    // `rstwatch verify`: every refused program is recorded instead of ending the load.
    bool verify = false;
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
    // Records the owners of the cgroup's sockets that existed before attach,
    // in each of `namespaces`. Returns the number of sockets found.
    std::uint64_t seed_owners(const std::vector<NetnsRef> &namespaces);
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
    // Every program this configuration asked for, and its fate (`rstwatch verify`).
    std::vector<ProgramStatus> program_statuses() const;
    // Optional programs the running kernel refused (see load_leaving_out).
    const std::vector<LeftOutProgram> &left_out() const { return left_out_; }
    unsigned hz() const { return hz_; }
    // Once enforcing: caches this boot's minimal kernel BTF of the enforce
    // object for the next start if it was not there (bpf/core_btf.hpp).
    void cache_core_btf();

  private:
    // Opens and configures the object (into skel_), with the autoload of the
    // programs in `left_out` off.
    void open_configured(const EnforceSetup &setup, unsigned hz_fallback, bool caller_sockops,
                         bool caller_sockopt, const std::vector<std::string> &left_out);
    std::uint32_t run_per_netns(int link_fd, const char *what,
                                const std::vector<NetnsRef> &namespaces,
                                const std::function<void(std::vector<std::uint8_t>)> &on_bytes,
                                std::vector<std::string> &skipped);

    bool existing_ok_ = false; // the TCP iterator is loaded (--existing, kernel allows it)
    bool seed_ok_ = false;     // both owner iterators are loaded
    bool clamp_ok_ = false;    // cgroup/setsockopt is loaded (--mode always)
    std::vector<OptionalProgram> optional_;
    std::vector<LeftOutProgram> left_out_;

    CoreBtfChoice core_btf_;
    CoreBtfWriter core_btf_writer_;
    SkelPtr<enforce_bpf> skel_;
    rw_enforce_config cfg_{};
    std::vector<std::pair<std::string, LinkPtr>> links_; // name -> link
    std::unique_ptr<RingReader> ring_;
    std::uint64_t malformed_ = 0;
    unsigned hz_ = 0;
};

} // namespace rstwatch
