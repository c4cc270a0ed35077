#include "enforce/enforce.hpp"

#include <bpf/bpf.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sched.h>
#include <sys/statfs.h>
#include <thread>
#include <unistd.h>

#include "bpf/caps.hpp"
#include "bpf/maps.hpp"
#include "enforce/internal.hpp"
#include "event/decode.hpp"
#include "util/log.hpp"
// records.h first: the skeleton's .rodata view embeds struct rw_enforce_config.
#include "rstwatch/records.h"
#include "enforce.skel.h"

namespace rstwatch {

namespace fs = std::filesystem;
using namespace enforce_detail;

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

    // Only sockops is essential: it is what gives new connections keepalive.
    optional_ = {
        {"rw_enf_owners", "owners of connections that existed before enforcement started are "
                          "not found (keepalive is still enforced)"},
        {"rw_enf_seed", "owners of connections that existed before enforcement started are not "
                        "found (keepalive is still enforced)"},
        {"rw_enf_existing", "--existing cannot change connections made before enforcement; new "
                            "connections are enforced"},
        {"rw_enf_clamp", "TCP_KEEPIDLE values above --idle that applications set on established "
                         "connections are not lowered (--mode always); new connections are "
                         "enforced"},
    };
    if (setup.verify) optional_.push_back({"rw_enf_sockops", ""}); // reported, essential
    auto load = [&] {
        return load_leaving_out(
            [&](const std::vector<std::string> &off) {
                open_configured(setup, hz_fallback, caller_sockops, caller_sockopt, off);
                return skel_->obj;
            },
            [&] { return enforce_bpf::load(skel_.get()); }, optional_,
            "loading the enforce BPF programs into the kernel");
    };
    left_out_ = load_trying_core_btf(core_btf_, load); // a retry reopens the object
    auto loaded = [&](const bpf_program *p) { return bpf_program__fd(p) >= 0; };
    existing_ok_ = setup.existing && loaded(skel_->progs.rw_enf_existing);
    seed_ok_ = loaded(skel_->progs.rw_enf_owners) && loaded(skel_->progs.rw_enf_seed);
    clamp_ok_ = cfg_.mode == RW_ENF_MODE_ALWAYS && loaded(skel_->progs.rw_enf_clamp);
    hz_ = checked_hz(*skel_, "enforce BPF object");
}

void Enforcer::cache_core_btf() {
    core_btf_writer_.start(skel_->obj, core_btf_.to_write());
}

void Enforcer::open_configured(const EnforceSetup &setup, unsigned hz_fallback, bool caller_sockops,
                               bool caller_sockopt, const std::vector<std::string> &left_out) {
    skel_.reset();
    skel_ = open_skeleton<enforce_bpf>(hz_fallback, "enforce", &core_btf_);

    // ---- configure (between open and load) ----
    skel_->rodata->cfg_hz_fallback = hz_fallback ? hz_fallback : 250;
    std::memcpy(&skel_->rodata->enf_cfg, &cfg_, sizeof(cfg_));
    skel_->rodata->enf_caller_sockops = caller_sockops;
    skel_->rodata->enf_caller_sockopt = caller_sockopt;
    bpf_map__set_max_entries(skel_->maps.enf_events, setup.ringbuf_bytes);
    // The setsockopt clamp exists only in always mode: unset-only never
    // overrides a value the application chose.
    bpf_program__set_autoload(skel_->progs.rw_enf_clamp, cfg_.mode == RW_ENF_MODE_ALWAYS);
    bpf_program__set_autoload(skel_->progs.rw_enf_existing, setup.existing);
    for (const auto &name : left_out)
        if (bpf_program *p = bpf_object__find_program_by_name(skel_->obj, name.c_str()))
            bpf_program__set_autoload(p, false);
}

Enforcer::~Enforcer() = default;

void Enforcer::attach(const std::string &cgroup_dir) {
    UniqueFd cg(open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg)
        throw EnvironmentError("cannot open the cgroup " + cgroup_dir + ": " + errno_text(errno));
    std::vector<std::pair<std::string, bpf_program *>> progs = {
        {"sockops", skel_->progs.rw_enf_sockops}};
    if (clamp_ok_) progs.emplace_back("setsockopt", skel_->progs.rw_enf_clamp);
    for (auto &[name, prog] : progs) {
        // A BPF link: other programs on the cgroup keep running (multi-attach),
        // and the kernel detaches it if rstwatch dies without cleaning up.
        LinkPtr l(bpf_program__attach_cgroup(prog, cg.get()));
        if (!l) throw bpf_failure("attaching " + name + " to the cgroup " + cgroup_dir, errno);
        links_.emplace_back(name, std::move(l));
    }
}

// Runs an iterator in each namespace and hands its output to `on_bytes`. The
// iterator walks the network namespace of the thread that creates it: enter a
// namespace in a thread of its own, never in ours. Namespaces that cannot be
// entered are listed in `skipped`; returns the number scanned.
std::uint32_t
Enforcer::run_per_netns(int link_fd, const char *what, const std::vector<NetnsRef> &namespaces,
                        const std::function<void(std::vector<std::uint8_t>)> &on_bytes,
                        std::vector<std::string> &skipped) {
    std::uint32_t scanned = 0;
    for (const auto &ns : namespaces) {
        if (ns.own) {
            on_bytes(read_iterator(link_fd, what));
            ++scanned;
            continue;
        }
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
                bytes = read_iterator(link_fd, what);
            } catch (...) {
                failure = std::current_exception();
            }
        });
        t.join();
        if (failure) std::rethrow_exception(failure);
        if (!skip.empty()) {
            skipped.push_back(skip);
            continue;
        }
        on_bytes(std::move(bytes));
        ++scanned;
    }
    return scanned;
}

std::uint64_t Enforcer::seed_owners(const std::vector<NetnsRef> &namespaces) {
    if (!seed_ok_) return 0; // left out on this kernel (warned at load)
    // Pass 1: who holds each socket of the cgroup (by socket address).
    LinkPtr files(bpf_program__attach_iter(skel_->progs.rw_enf_owners, nullptr));
    if (!files) throw bpf_failure("creating the socket owner iterator (iter/task_file)", errno);
    read_iterator(bpf_link__fd(files.get()), "socket owner");
    // Pass 2: store each owner on its socket, in every namespace of the cgroup.
    LinkPtr tcp(bpf_program__attach_iter(skel_->progs.rw_enf_seed, nullptr));
    if (!tcp) throw bpf_failure("creating the socket owner iterator (iter/tcp)", errno);
    const auto before = counters()[RW_ENF_CNT_SEEDED];
    std::vector<std::string> skipped;
    run_per_netns(
        bpf_link__fd(tcp.get()), "socket owner", namespaces, [](std::vector<std::uint8_t>) {},
        skipped);
    for (const auto &why : skipped)
        log_warn("owners of earlier connections: skipped a network namespace of the cgroup: " +
                 why);
    // Entries left are sockets that closed meanwhile or live in a namespace we
    // could not enter: free them, nothing will read them.
    const int fd = bpf_map__fd(skel_->maps.enf_seed);
    std::uint64_t key = 0;
    while (bpf_map_get_next_key(fd, nullptr, &key) == 0)
        if (bpf_map_delete_elem(fd, &key) != 0) break;
    return counters()[RW_ENF_CNT_SEEDED] - before;
}

ExistingResult Enforcer::apply_existing(const std::vector<NetnsRef> &namespaces) {
    ExistingResult res;
    if (!existing_ok_) return res; // not on this kernel (warned at load)
    LinkPtr it(bpf_program__attach_iter(skel_->progs.rw_enf_existing, nullptr));
    if (!it) throw bpf_failure("creating the TCP iterator (iter/tcp)", errno);
    res.namespaces = run_per_netns(
        bpf_link__fd(it.get()), "TCP", namespaces,
        [&](std::vector<std::uint8_t> bytes) {
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
        },
        res.skipped);
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
    sum_percpu_counters(bpf_map__fd(skel_->maps.enf_counters), c.v);
    return c;
}

std::vector<ProgramStatus> Enforcer::program_statuses() const {
    return rstwatch::program_statuses(skel_->obj, optional_, left_out_);
}

std::vector<std::string> Enforcer::programs() const {
    std::vector<std::string> out{"sockops"};
    if (clamp_ok_) out.emplace_back("setsockopt");
    return out;
}

} // namespace rstwatch
