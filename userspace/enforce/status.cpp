// rstwatch enforce --status and --remove: what the kernel and bpffs hold.
#include "enforce/enforce.hpp"

#include <bpf/bpf.h>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <signal.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bpf/caps.hpp"
#include "bpf/maps.hpp"
#include "enforce/internal.hpp"
#include "util/log.hpp"
// records.h first: the skeleton's .rodata view embeds struct rw_enforce_config.
#include "rstwatch/records.h"
#include "enforce.skel.h"

namespace rstwatch {

namespace fs = std::filesystem;
using namespace enforce_detail;

namespace {

using Rodata = std::remove_pointer_t<decltype(enforce_bpf::rodata)>;

} // namespace

// ---- --status and --remove ----

namespace {

struct ProgView {
    std::string name;
    std::vector<std::uint32_t> map_ids;
};

std::optional<ProgView> prog_view(std::uint32_t prog_id) {
    UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
    if (!fd) return std::nullopt;
    bpf_prog_info info{};
    std::uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return std::nullopt;
    ProgView v;
    v.name = info.name;
    if (!link_name_of(v.name)) return v;
    v.map_ids.resize(info.nr_map_ids);
    bpf_prog_info again{};
    again.nr_map_ids = std::uint32_t(v.map_ids.size());
    again.map_ids = reinterpret_cast<std::uint64_t>(v.map_ids.data());
    len = sizeof(again);
    if (bpf_obj_get_info_by_fd(fd.get(), &again, &len) != 0) v.map_ids.clear();
    v.map_ids.resize(std::min<std::size_t>(v.map_ids.size(), again.nr_map_ids));
    return v;
}

// Settings and counters from the maps of one of our programs. Returns the id
// of its .rodata map (which identifies one loaded enforce object), 0 if none.
std::uint32_t read_maps(const ProgView &p, ActiveEnforcement &e) {
    std::uint32_t rodata_id = 0;
    for (auto id : p.map_ids) {
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        if (!fd) continue;
        bpf_map_info info{};
        std::uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        std::string name = info.name;
        const std::string suffix = ".rodata";
        if (name.size() >= suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            rodata_id = id;
            if (info.value_size != sizeof(Rodata)) continue; // another rstwatch's layout
            std::vector<std::uint8_t> raw(sizeof(Rodata));
            std::uint32_t key = 0;
            if (bpf_map_lookup_elem(fd.get(), &key, raw.data()) != 0) continue;
            std::uint32_t abi = 0;
            std::memcpy(&abi, raw.data() + offsetof(Rodata, rw_abi_version), sizeof(abi));
            if (abi != RW_ABI_VERSION) continue;
            rw_enforce_config cfg{};
            std::memcpy(&cfg, raw.data() + offsetof(Rodata, enf_cfg), sizeof(cfg));
            e.config = cfg;
        } else if (name == "enf_counters" && info.value_size == sizeof(std::uint64_t) &&
                   info.max_entries == RW_ENF_CNT_MAX) {
            EnforceCounters c;
            if (sum_percpu_counters(fd.get(), c.v)) e.counters = c;
        }
    }
    return rodata_id;
}

// Link id -> pin directory, for every pin under our root.
std::map<std::uint32_t, std::string> pinned_link_ids() {
    std::map<std::uint32_t, std::string> out;
    std::error_code ec;
    for (fs::directory_iterator d(kPinRoot, ec), end; !ec && d != end; d.increment(ec)) {
        for (const auto &name : pinned_links(d->path().string())) {
            UniqueFd fd(bpf_obj_get((d->path() / name).c_str()));
            if (!fd) continue;
            bpf_link_info info{};
            std::uint32_t len = sizeof(info);
            if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0)
                out[info.id] = d->path().string();
        }
    }
    return out;
}

} // namespace

std::vector<ActiveEnforcement> list_enforcements() {
    const auto pins = pinned_link_ids();
    std::map<std::uint64_t, ActiveEnforcement> by_object; // key: .rodata map id (or link id)
    std::uint32_t id = 0;
    for (;;) {
        if (bpf_link_get_next_id(id, &id) != 0) {
            if (errno == ENOENT) break;
            throw bpf_failure("listing BPF links", errno);
        }
        UniqueFd fd(bpf_link_get_fd_by_id(id));
        if (!fd) continue; // detached meanwhile
        bpf_link_info info{};
        std::uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        if (info.type != BPF_LINK_TYPE_CGROUP) continue;
        auto prog = prog_view(info.prog_id);
        if (!prog || !link_name_of(prog->name)) continue;

        ActiveEnforcement found;
        std::uint64_t key = read_maps(*prog, found);
        if (!key) key = (1ull << 32) | id;
        auto &e = by_object[key];
        if (e.link_ids.empty()) {
            e = std::move(found);
            e.cgroup_id = info.cgroup.cgroup_id;
        }
        e.link_ids.push_back(id);
        e.programs.emplace_back(link_name_of(prog->name));
        if (auto p = pins.find(id); p != pins.end()) e.pin_dir = p->second;
    }
    std::vector<ActiveEnforcement> out;
    for (auto &[key, e] : by_object)
        out.push_back(std::move(e));
    return out;
}

RemoveResult remove_pinned(std::uint64_t cgroup_id) {
    RemoveResult res;
    res.pin_dir = enforce_pin_dir(cgroup_id);
    for (const auto &name : pinned_links(res.pin_dir)) {
        std::string path = res.pin_dir + "/" + name;
        UniqueFd fd(bpf_obj_get(path.c_str()));
        if (!fd && errno == EACCES)
            throw EnvironmentError("cannot open the pinned link " + path + ": " +
                                   errno_text(EACCES) + dac_override_hint(EACCES, kPinRoot));
        if (!fd) throw bpf_failure("opening the pinned link " + path, errno);
        // Detach first: the link goes away even if another process still holds
        // a descriptor to it (bpftool, a crashed-but-not-reaped rstwatch).
        if (bpf_link_detach(fd.get()) != 0 && errno != EINVAL)
            throw bpf_failure("detaching the pinned link " + path, errno);
        if (unlink(path.c_str()) != 0)
            throw EnvironmentError("cannot remove the pin " + path + ": " + errno_text(errno) +
                                   dac_override_hint(errno, kPinRoot));
        res.removed.push_back(name);
    }
    rmdir(res.pin_dir.c_str());
    return res;
}

bool process_running(std::uint32_t pid) {
    return pid && (kill(pid_t(pid), 0) == 0 || errno == EPERM);
}

} // namespace rstwatch
