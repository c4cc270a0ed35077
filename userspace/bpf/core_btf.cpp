#include "bpf/core_btf.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <unordered_set>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"

namespace rstwatch {

namespace {

using BtfPtr = std::unique_ptr<btf, void (*)(btf *)>;

// libbpf's bpf_core_essential_name_len: "sock___old" matches "sock".
std::string_view essential_name(std::string_view n) {
    for (std::size_t i = n.size() >= 5 ? n.size() - 5 + 1 : 0; i-- > 0;) {
        if (n[i] != '_' && n.compare(i + 1, 3, "___") == 0 && n[i + 4] != '_')
            return n.substr(0, i + 1);
    }
    return n;
}

// The kinds a CO-RE relocation starts from (field, type and enum relocations).
bool is_root_kind(int kind) {
    switch (kind) {
    case BTF_KIND_INT:
    case BTF_KIND_FLOAT:
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_FWD:
        return true;
    default:
        return false;
    }
}

void check(int r, const char *what) {
    if (r < 0)
        throw Error(Exit::runtime, std::string("minimal BTF: ") + what + ": " + std::strerror(-r));
}

// Copies types of `src` into `dst`, each at most once, embedded types first
// (btf__add_field appends to the struct added last, so a struct's members
// must exist before it is started).
class Copier {
  public:
    Copier(const btf *src, btf *dst) : src_(src), dst_(dst), ids_(btf__type_cnt(src), -1) {}

    int copy(std::uint32_t id) {
        if (id == 0) return 0;
        if (ids_.at(id) >= 0) return ids_[id];
        const btf_type *t = btf__type_by_id(src_, id);
        if (!t) throw Error(Exit::runtime, "minimal BTF: no type " + std::to_string(id));
        const char *name = btf__name_by_offset(src_, t->name_off);
        int out = -1;
        switch (btf_kind(t)) {
        case BTF_KIND_INT:
        case BTF_KIND_FLOAT:
        case BTF_KIND_ENUM:
        case BTF_KIND_ENUM64:
        case BTF_KIND_FWD:
            // No references to other types: copied verbatim (int encoding and
            // bits, enum signedness, forward kind).
            out = btf__add_type(dst_, src_, t);
            break;
        case BTF_KIND_PTR:
            out = btf__add_ptr(dst_, pointee(t->type));
            break;
        case BTF_KIND_ARRAY: {
            const struct btf_array *a = btf_array(t);
            const int elem = copy(a->type), index = copy(a->index_type);
            out = btf__add_array(dst_, index, elem, a->nelems);
            break;
        }
        case BTF_KIND_STRUCT:
        case BTF_KIND_UNION:
            out = copy_composite(t, name);
            break;
        case BTF_KIND_TYPEDEF:
            out = btf__add_typedef(dst_, name, copy(t->type));
            break;
        case BTF_KIND_VOLATILE:
            out = btf__add_volatile(dst_, copy(t->type));
            break;
        case BTF_KIND_CONST:
            out = btf__add_const(dst_, copy(t->type));
            break;
        case BTF_KIND_RESTRICT:
            out = btf__add_restrict(dst_, copy(t->type));
            break;
        case BTF_KIND_FUNC_PROTO: // a typedef of a function type
            out = copy_func_proto(t);
            break;
        case BTF_KIND_TYPE_TAG:
            out = btf__add_type_tag(dst_, name, copy(t->type));
            break;
        default:
            throw Error(Exit::runtime, "minimal BTF: unexpected kind " +
                                           std::to_string(btf_kind(t)) + " of type " +
                                           std::to_string(id));
        }
        check(out, "adding a type");
        ids_[id] = out;
        return out;
    }

  private:
    int copy_composite(const btf_type *t, const char *name) {
        const unsigned n = btf_vlen(t);
        const struct btf_member *m = btf_members(t);
        std::vector<int> types(n);
        for (unsigned i = 0; i < n; ++i)
            types[i] = copy(m[i].type);
        const int out = btf_kind(t) == BTF_KIND_STRUCT ? btf__add_struct(dst_, name, t->size)
                                                       : btf__add_union(dst_, name, t->size);
        check(out, "adding a struct");
        for (unsigned i = 0; i < n; ++i)
            check(btf__add_field(dst_, btf__name_by_offset(src_, m[i].name_off), types[i],
                                 btf_member_bit_offset(t, i), btf_member_bitfield_size(t, i)),
                  "adding a member");
        return out;
    }

    int copy_func_proto(const btf_type *t) {
        const unsigned n = btf_vlen(t);
        const struct btf_param *p = btf_params(t);
        std::vector<int> types(n);
        for (unsigned i = 0; i < n; ++i)
            types[i] = copy(p[i].type);
        const int out = btf__add_func_proto(dst_, copy(t->type));
        check(out, "adding a function type");
        for (unsigned i = 0; i < n; ++i)
            check(btf__add_func_param(dst_, btf__name_by_offset(src_, p[i].name_off), types[i]),
                  "adding a parameter");
        return out;
    }

    // What a pointer points to. A struct or union (behind typedefs and
    // qualifiers) becomes an empty one of the same kind, name and size: CO-RE
    // compares pointer targets by kind and name only (types_are_compat), and
    // following them would pull in the whole kernel. Anything else is copied.
    int pointee(std::uint32_t id) {
        std::uint32_t c = id;
        const btf_type *t = btf__type_by_id(src_, c);
        while (t && (btf_is_typedef(t) || btf_is_mod(t))) {
            c = t->type;
            t = btf__type_by_id(src_, c);
        }
        if (!t || !btf_is_composite(t)) return copy(id);
        if (stubs_.at(c) >= 0) return stubs_[c];
        const char *name = btf__name_by_offset(src_, t->name_off);
        const int out = btf_is_struct(t) ? btf__add_struct(dst_, name, t->size)
                                         : btf__add_union(dst_, name, t->size);
        check(out, "adding a pointer target");
        return stubs_[c] = out;
    }

    const btf *src_;
    btf *dst_;
    std::vector<int> ids_;
    std::vector<int> stubs_ = std::vector<int>(ids_.size(), -1);
};

std::uint64_t fnv1a(std::uint64_t h, const void *data, std::size_t n) {
    const auto *p = static_cast<const unsigned char *>(data);
    for (std::size_t i = 0; i < n; ++i)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

// Bump when minimal_core_btf changes what it writes: files of an older
// builder are then never read (the key includes it).
constexpr std::string_view kFormat = "rstwatch-core-btf-2";

std::string cache_dir() {
    // A set-capability binary started by a user: the user's environment must
    // not choose the file that decides every offset the programs read.
    if (getauxval(AT_SECURE)) return {};
    const char *env = secure_getenv("RSTWATCH_CACHE_DIR");
    std::string base = env && *env ? env : "/run/rstwatch";
    return base == "off" ? std::string() : base + "/core-btf";
}

// Written by this user or by root, and nobody else can change it.
bool trusted(const struct stat &st) {
    return (st.st_uid == geteuid() || st.st_uid == 0) && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

} // namespace

std::vector<std::uint8_t> minimal_core_btf(const btf *local, const btf *vmlinux) {
    std::unordered_set<std::string_view> names;
    for (std::uint32_t id = 1; id < btf__type_cnt(local); ++id) {
        const btf_type *t = btf__type_by_id(local, id);
        if (!is_root_kind(btf_kind(t))) continue;
        std::string_view n = btf__name_by_offset(local, t->name_off);
        if (!n.empty()) names.insert(essential_name(n));
    }

    BtfPtr out(btf__new_empty(), btf__free);
    if (!out) throw Error(Exit::runtime, "minimal BTF: out of memory");
    Copier copier(vmlinux, out.get());
    for (std::uint32_t id = 1; id < btf__type_cnt(vmlinux); ++id) {
        const btf_type *t = btf__type_by_id(vmlinux, id);
        if (!is_root_kind(btf_kind(t)) || !t->name_off) continue;
        if (names.count(essential_name(btf__name_by_offset(vmlinux, t->name_off)))) copier.copy(id);
    }
    std::uint32_t size = 0;
    const void *raw = btf__raw_data(out.get(), &size);
    if (!raw) throw Error(Exit::runtime, "minimal BTF: cannot serialise it");
    const auto *p = static_cast<const std::uint8_t *>(raw);
    return {p, p + size};
}

std::string core_btf_path(std::string_view object_name, const void *elf, std::size_t elf_size) {
    const std::string dir = cache_dir();
    if (dir.empty()) return {};
    std::string boot_id;
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    if (!std::getline(in, boot_id) || boot_id.empty()) return {};
    utsname u{};
    uname(&u);
    std::uint64_t h = 14695981039346656037ull;
    h = fnv1a(h, kFormat.data(), kFormat.size());
    h = fnv1a(h, boot_id.data(), boot_id.size());
    h = fnv1a(h, u.release, std::strlen(u.release));
    h = fnv1a(h, elf, elf_size);
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
    // The euid in the name: root and a service account each keep their own.
    return dir + "/" + std::string(object_name) + "-" + std::to_string(geteuid()) + "-" + hex +
           ".btf";
}

bool core_btf_usable(const std::string &path) {
    struct stat st {};
    if (path.empty() || lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !trusted(st))
        return false;
    const std::string dir = path.substr(0, path.rfind('/'));
    return lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && trusted(st);
}

void write_core_btf(const std::string &path, const std::vector<std::uint8_t> &local_btf_raw) {
    // The file first: where it cannot be written, parsing the kernel BTF
    // (~12 ms, ~15 MB) would be wasted.
    const std::string dir = path.substr(0, path.rfind('/'));
    const std::string base = dir.substr(0, dir.rfind('/'));
    mkdir(base.c_str(), 0700); // EEXIST is fine; core_btf_usable checks the result
    mkdir(dir.c_str(), 0700);
    const std::string tmp = path + ".tmp" + std::to_string(getpid());
    UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        throw Error(Exit::runtime,
                    "minimal BTF: cannot create " + tmp + ": " + std::strerror(errno));
    struct Unlink {
        const std::string &p;
        bool armed = true;
        ~Unlink() {
            if (armed) unlink(p.c_str());
        }
    } cleanup{tmp};

    BtfPtr local(btf__new(local_btf_raw.data(), std::uint32_t(local_btf_raw.size())), btf__free);
    if (!local) throw Error(Exit::runtime, "minimal BTF: the object's BTF does not parse");
    BtfPtr vmlinux(btf__load_vmlinux_btf(), btf__free);
    if (!vmlinux) throw Error(Exit::runtime, "minimal BTF: cannot parse the kernel BTF");
    const std::vector<std::uint8_t> data = minimal_core_btf(local.get(), vmlinux.get());

    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw Error(Exit::runtime,
                        "minimal BTF: cannot write " + tmp + ": " + std::strerror(errno));
        done += std::size_t(n);
    }
    if (rename(tmp.c_str(), path.c_str()) != 0)
        throw Error(Exit::runtime,
                    "minimal BTF: cannot rename " + tmp + ": " + std::strerror(errno));
    cleanup.armed = false;
}

bool CoreBtfChoice::retry_without() {
    if (!used) return false;
    used = false;
    refused = true;
    return true;
}

void CoreBtfChoice::discard(const std::string &why) {
    log_warn("loading against the cached minimal kernel BTF " + path + " failed (" +
             why.substr(0, why.find('\n')) +
             "), and against the full kernel BTF it did not: " + "removed it");
    unlink(path.c_str());
}

CoreBtfWriter::~CoreBtfWriter() {
    if (done_.valid()) done_.wait();
}

void CoreBtfWriter::start(const bpf_object *obj, const std::string &path) {
    if (path.empty() || done_.valid()) return;
    const btf *local = bpf_object__btf(obj);
    std::uint32_t size = 0;
    const void *raw = local ? btf__raw_data(local, &size) : nullptr;
    if (!raw) return;
    const auto *p = static_cast<const std::uint8_t *>(raw);
    try {
        start_thread(path, std::vector<std::uint8_t>(p, p + size));
    } catch (const std::exception &e) { // no thread left (TasksMax): no cache, no harm
        log_debug(std::string("no minimal kernel BTF cached: ") + e.what());
    }
}

void CoreBtfWriter::start_thread(const std::string &path, std::vector<std::uint8_t> data) {
    done_ = std::async(std::launch::async, [path, data = std::move(data)] {
        setpriority(PRIO_PROCESS, 0, 10); // this thread only (Linux): after the events
        try {
            write_core_btf(path, data);
            log_debug("minimal kernel BTF for the next start written to " + path);
        } catch (const std::exception &e) {
            log_debug(std::string("no minimal kernel BTF cached: ") + e.what());
        }
    });
}

} // namespace rstwatch
