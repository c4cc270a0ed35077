// BPF objects by kernel id: which ones a process holds (from /proc/PID/fdinfo)
// and which ones the kernel still has (bpftool). Tests compare ids, never
// counts, so other rstwatch instances on the host cannot confuse them.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <sys/types.h>

#include "harness.hpp"

namespace rwtest {

struct BpfIds {
    std::set<unsigned> progs, maps, links, btfs;
    bool empty() const { return progs.empty() && maps.empty() && links.empty() && btfs.empty(); }
};
std::ostream &operator<<(std::ostream &os, const BpfIds &ids);

// Objects process `pid` holds through its file descriptors (a link fd also
// names its program).
BpfIds bpf_ids_held_by(pid_t pid);
// Every object the kernel has now (bpftool prog/map/link/btf show).
BpfIds bpf_ids_live();
// The part of `ids` that is still alive.
BpfIds bpf_ids_alive(const BpfIds &ids);
// Waits until none of `ids` is alive (the kernel frees asynchronously after the
// last reference goes); returns what is still alive at the deadline.
BpfIds wait_until_released(const BpfIds &ids, std::chrono::milliseconds timeout = 10s);
// Names of the programs `ids.progs` (bpftool), e.g. "rw_tcp_send_reset".
std::set<std::string> bpf_prog_names(const BpfIds &ids);
// Every bpffs path below /sys/fs/bpf whose pinned object is one of `ids`.
std::vector<std::string> pinned_paths_of(const BpfIds &ids);

// A test helper executable built from tests/helpers/<name>.cpp.
std::string helper_bin(const std::string &name);

} // namespace rwtest
