#include "enforce/enforce.hpp"

#include "bpf/caps.hpp"

#include <bpf/bpf.h>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <linux/capability.h>
#include <linux/magic.h>
#include <map>
#include <sched.h>
#include <set>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

#include "event/decode.hpp"
#include "util/log.hpp"
// records.h first: the skeleton's .rodata view embeds struct rw_enforce_config.
#include "rstwatch/records.h"
#include "enforce.skel.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

namespace rstwatch {

namespace fs = std::filesystem;

namespace {

// Program names as the kernel stores them (at most 15 characters): how
// --status recognises our links among everybody's.
constexpr const char *kSockopsProg = "rw_enf_sockops";
constexpr const char *kClampProg = "rw_enf_clamp";
constexpr const char *kPinRoot = "/sys/fs/bpf/rstwatch/enforce";

using Rodata = std::remove_pointer_t<decltype(enforce_bpf::rodata)>;

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

bool has_cap(std::uint64_t eff, int cap) {
    return (eff >> cap) & 1;
}

// Link name (pin file) of a program.
const char *link_name_of(const std::string &prog_name) {
    if (prog_name == kSockopsProg) return "sockops";
    if (prog_name == kClampProg) return "setsockopt";
    return nullptr;
}

} // namespace

// ---- privileges ----

std::uint64_t effective_capabilities() {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (syscall(SYS_capget, &hdr, data) != 0) return ~0ull;
    return (std::uint64_t(data[1].effective) << 32) | data[0].effective;
}

std::string enforce_capability_problem(std::uint64_t eff, EnforceAction action) {
    // CAP_SYS_ADMIN stands in for each of these (bpf_capable, perfmon_capable,
    // bpf_net_capable in the kernel).
    if (has_cap(eff, CAP_SYS_ADMIN)) return {};
    struct Need {
        int cap;
        const char *name;
        const char *why;
    };
    std::vector<Need> needs;
    std::string grant;
    switch (action) {
    case EnforceAction::enforce:
        needs = {{CAP_BPF, "CAP_BPF", "to load BPF programs"},
                 {CAP_PERFMON, "CAP_PERFMON", "to read socket state and run BPF iterators"},
                 {CAP_NET_ADMIN, "CAP_NET_ADMIN",
                  "to attach programs to a cgroup and set socket options"}};
        grant = "CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN";
        break;
    case EnforceAction::remove:
        needs = {{CAP_BPF, "CAP_BPF", "to open and detach the pinned BPF links"}};
        grant = "CAP_BPF";
        break;
    case EnforceAction::status:
        // The kernel lets only CAP_SYS_ADMIN enumerate BPF links and programs.
        return "rstwatch enforce --status is missing CAP_SYS_ADMIN (the kernel allows only it to "
               "list BPF links and programs): run it as root";
    }
    std::string missing;
    for (const auto &n : needs) {
        if (has_cap(eff, n.cap)) continue;
        if (!missing.empty()) missing += ", ";
        missing += std::string(n.name) + " (" + n.why + ")";
    }
    if (missing.empty()) return {};
    return "rstwatch enforce is missing " + missing + ": run it as root, or grant " + grant +
           " (for example AmbientCapabilities= in a systemd unit, or setcap on the binary)";
}

// ---- pins ----

std::string enforce_pin_dir(std::uint64_t cgroup_id) {
    return std::string(kPinRoot) + "/cg" + std::to_string(cgroup_id);
}

void ensure_bpffs() {
    struct statfs st {};
    if (statfs(kBpffsMount, &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
    mkdir(kBpffsMount, 0700);
    int err = 0;
    if (mount("bpf", kBpffsMount, "bpf", 0, "mode=0700") != 0) err = errno;
    if (err || statfs(kBpffsMount, &st) != 0 || st.f_type != BPF_FS_MAGIC)
        throw EnvironmentError(std::string("--pin needs the BPF filesystem at ") + kBpffsMount +
                               ", which is not mounted, and mounting it failed (" +
                               errno_text(err ? err : EINVAL) +
                               "). Fix: mount -t bpf bpf /sys/fs/bpf");
}

std::vector<std::string> pinned_links(const std::string &dir) {
    std::vector<std::string> out;
    for (const char *name : {"sockops", "setsockopt"})
        if (access((dir + "/" + name).c_str(), F_OK) == 0) out.emplace_back(name);
    return out;
}

// ---- network namespaces ----

std::vector<NetnsRef> cgroup_network_namespaces(const std::string &cgroup_dir) {
    std::vector<NetnsRef> out;
    std::set<std::uint64_t> seen;
    auto add = [&](const std::string &path, bool own) {
        struct stat st {};
        if (stat(path.c_str(), &st) != 0) return; // the process exited
        if (!seen.insert(st.st_ino).second) return;
        out.push_back({st.st_ino, path, own});
    };
    add("/proc/self/ns/net", true);
    std::error_code ec;
    auto visit = [&](const fs::path &dir) {
        std::ifstream procs(dir / "cgroup.procs");
        std::string pid;
        while (std::getline(procs, pid))
            if (!pid.empty()) add("/proc/" + pid + "/ns/net", false);
    };
    visit(cgroup_dir);
    for (fs::recursive_directory_iterator
             it(cgroup_dir, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) visit(it->path());
    return out;
}

// ---- the loader ----

Enforcer::Enforcer(const EnforceSetup &setup, unsigned hz_fallback) : cfg_(setup.cfg) {
    require_btf();
    install_libbpf_logging();
    // Owners are metadata: a kernel that does not let these program types name
    // the calling task still gets keepalive enforced.
    const bool caller_sockops = prog_type_knows_caller(BPF_PROG_TYPE_SOCK_OPS);
    if (!caller_sockops)
        log_warn("kernel " + kernel_release() +
                 ": sockops programs cannot call bpf_get_current_pid_tgid/_uid_gid/_comm, so "
                 "keepalive_enforced names no process for connections made while enforcing");
    if (!kernel_knows_helper("sock_from_file"))
        log_warn("kernel " + kernel_release() +
                 " has no bpf_sock_from_file (5.11+): owners of connections that existed before "
                 "enforcement started are not found (keepalive is still enforced)");
    const bool caller_sockopt =
        cfg_.mode != RW_ENF_MODE_ALWAYS || prog_type_knows_caller(BPF_PROG_TYPE_CGROUP_SOCKOPT);
    if (!caller_sockopt)
        log_warn("kernel " + kernel_release() +
                 ": cgroup/setsockopt programs cannot name the calling task; lowered "
                 "TCP_KEEPIDLE calls are credited to the socket's recorded owner");

    existing_ok_ = setup.existing;
    int err = load(setup, hz_fallback, caller_sockops, caller_sockopt);
    // --existing needs bpf_setsockopt from iter/tcp, which older kernels refuse
    // (5.10: "unknown func bpf_setsockopt"): enforce new connections anyway.
    if (err && existing_ok_ &&
        libbpf_recent_warnings(400).find("prog 'rw_enf_existing': failed to load") !=
            std::string::npos) {
        log_warn("kernel " + kernel_release() +
                 ": iter/tcp programs cannot call bpf_setsockopt, so --existing cannot change "
                 "connections made before enforcement; new connections are enforced");
        existing_ok_ = false;
        err = load(setup, hz_fallback, caller_sockops, caller_sockopt);
    }
    if (err) throw bpf_failure("loading the enforce BPF programs into the kernel", err);
    if (skel_->rodata->rw_abi_version != RW_ABI_VERSION)
        throw Error(Exit::runtime, "enforce BPF object and rstwatch disagree on the record layout");
    hz_ = skel_->kconfig && skel_->kconfig->CONFIG_HZ ? unsigned(skel_->kconfig->CONFIG_HZ)
                                                      : skel_->rodata->cfg_hz_fallback;
}

int Enforcer::load(const EnforceSetup &setup, unsigned hz_fallback, bool caller_sockops,
                   bool caller_sockopt) {
    // Without a readable kernel config libbpf needs CONFIG_HZ handed over.
    const std::string kconfig = kconfig_for(hz_fallback);
    LIBBPF_OPTS(bpf_object_open_opts, open_opts);
    if (!kconfig.empty()) open_opts.kconfig = kconfig.c_str();
    skel_.reset();
    enforce_bpf *raw = enforce_bpf::open(&open_opts);
    if (!raw) throw bpf_failure("opening the enforce BPF object", errno);
    skel_.reset(raw);

    // ---- configure (between open and load) ----
    skel_->rodata->cfg_hz_fallback = hz_fallback ? hz_fallback : 250;
    std::memcpy(&skel_->rodata->enf_cfg, &cfg_, sizeof(cfg_));
    skel_->rodata->enf_caller_sockops = caller_sockops;
    skel_->rodata->enf_caller_sockopt = caller_sockopt;
    bpf_map__set_max_entries(skel_->maps.enf_events, setup.ringbuf_bytes);
    // The setsockopt clamp exists only in always mode: unset-only never
    // overrides a value the application chose.
    bpf_program__set_autoload(skel_->progs.rw_enf_clamp, cfg_.mode == RW_ENF_MODE_ALWAYS);
    bpf_program__set_autoload(skel_->progs.rw_enf_existing, existing_ok_);
    return enforce_bpf::load(skel_.get());
}

Enforcer::~Enforcer() = default;

void Enforcer::attach(const std::string &cgroup_dir) {
    UniqueFd cg(open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg)
        throw EnvironmentError("cannot open the cgroup " + cgroup_dir + ": " + errno_text(errno));
    std::vector<std::pair<std::string, bpf_program *>> progs = {
        {"sockops", skel_->progs.rw_enf_sockops}};
    if (cfg_.mode == RW_ENF_MODE_ALWAYS)
        progs.emplace_back("setsockopt", skel_->progs.rw_enf_clamp);
    for (auto &[name, prog] : progs) {
        // A BPF link: other programs on the cgroup keep running (multi-attach),
        // and the kernel detaches it if rstwatch dies without cleaning up.
        LinkPtr l(bpf_program__attach_cgroup(prog, cg.get()));
        if (!l) throw bpf_failure("attaching " + name + " to the cgroup " + cgroup_dir, errno);
        links_.emplace_back(name, std::move(l));
    }
}

std::vector<std::uint8_t> Enforcer::run_iterator(int link_fd, const char *what) {
    UniqueFd fd(bpf_iter_create(link_fd));
    if (!fd) throw bpf_failure(std::string("running the ") + what + " iterator", errno);
    std::vector<std::uint8_t> out;
    std::uint8_t buf[1 << 14];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            throw bpf_failure(std::string("reading the ") + what + " iterator", errno);
        }
        if (n == 0) break;
        out.insert(out.end(), buf, buf + n);
    }
    return out;
}

std::uint64_t Enforcer::seed_owners() {
    LinkPtr it(bpf_program__attach_iter(skel_->progs.rw_enf_owners, nullptr));
    if (!it) throw bpf_failure("creating the socket owner iterator (iter/task_file)", errno);
    auto before = counters()[RW_ENF_CNT_SEEDED];
    run_iterator(bpf_link__fd(it.get()), "socket owner");
    return counters()[RW_ENF_CNT_SEEDED] - before;
}

ExistingResult Enforcer::apply_existing(const std::vector<NetnsRef> &namespaces) {
    ExistingResult res;
    if (!existing_ok_) return res; // not on this kernel (warned at load)
    LinkPtr it(bpf_program__attach_iter(skel_->progs.rw_enf_existing, nullptr));
    if (!it) throw bpf_failure("creating the TCP iterator (iter/tcp)", errno);
    const int link_fd = bpf_link__fd(it.get());

    auto decode = [&](const std::vector<std::uint8_t> &bytes) {
        std::string why;
        std::size_t used = decode_stream(
            bytes.data(), bytes.size(),
            [&](const Record &r) {
                if (const auto *e = std::get_if<rw_enforce>(&r)) res.records.push_back(*e);
            },
            &why);
        if (!why.empty() || used != bytes.size())
            throw Error(Exit::runtime, "malformed TCP iterator record: " +
                                           (why.empty() ? std::string("truncated") : why));
    };

    for (const auto &ns : namespaces) {
        if (ns.own) {
            decode(run_iterator(link_fd, "TCP"));
            ++res.namespaces;
            continue;
        }
        // The iterator walks the network namespace of the thread that creates
        // it: enter the namespace in a thread of its own, never in ours.
        std::vector<std::uint8_t> bytes;
        std::exception_ptr failure;
        std::string skip;
        std::thread t([&] {
            try {
                UniqueFd nsfd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
                if (!nsfd || setns(nsfd.get(), CLONE_NEWNET) != 0) {
                    skip = "netns " + std::to_string(ns.inode) + " (" + ns.path +
                           "): " + errno_text(errno);
                    return;
                }
                bytes = run_iterator(link_fd, "TCP");
            } catch (...) {
                failure = std::current_exception();
            }
        });
        t.join();
        if (failure) std::rethrow_exception(failure);
        if (!skip.empty()) {
            res.skipped.push_back(skip);
            continue;
        }
        decode(bytes);
        ++res.namespaces;
    }
    return res;
}

void Enforcer::pin(const std::string &dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        throw EnvironmentError("cannot create the pin directory " + dir + ": " + ec.message() +
                               dac_override_hint(ec.value(), kPinRoot));
    std::vector<std::string> done;
    for (auto &[name, link] : links_) {
        std::string path = dir + "/" + name;
        if (int err = bpf_link__pin(link.get(), path.c_str())) {
            for (auto &p : done)
                unlink(p.c_str());
            rmdir(dir.c_str());
            throw bpf_failure("pinning the " + name + " link at " + path, err);
        }
        done.push_back(path);
    }
}

void Enforcer::open_ring_buffer(std::function<void(const rw_enforce &)> on_record) {
    auto decode = [this, on_record = std::move(on_record)](const void *data, std::size_t size) {
        std::string why;
        auto rec = decode_record(data, size, &why);
        const rw_enforce *e = rec ? std::get_if<rw_enforce>(&*rec) : nullptr;
        if (!e) {
            ++malformed_;
            log_debug("dropping a malformed enforce record: " +
                      (why.empty() ? std::string("not an enforce record") : why));
            return 0;
        }
        on_record(*e);
        return 0;
    };
    ring_ = std::make_unique<RingReader>(bpf_map__fd(skel_->maps.enf_events), std::move(decode),
                                         "the enforce ring buffer");
}

int Enforcer::ring_epoll_fd() const {
    return ring_->epoll_fd();
}

int Enforcer::consume() {
    return ring_ ? int(ring_->consume()) : 0;
}

void Enforcer::stop_reporting() {
    if (skel_->data) skel_->data->enf_reporting = false;
}

void Enforcer::detach() {
    links_.clear();
}

EnforceCounters Enforcer::counters() const {
    EnforceCounters c;
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return c;
    std::vector<std::uint64_t> per_cpu(std::size_t(ncpu), 0);
    int fd = bpf_map__fd(skel_->maps.enf_counters);
    for (std::uint32_t i = 0; i < RW_ENF_CNT_MAX; ++i) {
        if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
        for (auto v : per_cpu)
            c.v[i] += v;
    }
    return c;
}

std::vector<std::string> Enforcer::programs() const {
    std::vector<std::string> out{"sockops"};
    if (cfg_.mode == RW_ENF_MODE_ALWAYS) out.emplace_back("setsockopt");
    return out;
}

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
            int ncpu = libbpf_num_possible_cpus();
            if (ncpu <= 0) continue;
            EnforceCounters c;
            std::vector<std::uint64_t> per_cpu(std::size_t(ncpu), 0);
            for (std::uint32_t i = 0; i < RW_ENF_CNT_MAX; ++i) {
                if (bpf_map_lookup_elem(fd.get(), &i, per_cpu.data()) != 0) continue;
                for (auto v : per_cpu)
                    c.v[i] += v;
            }
            e.counters = c;
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
