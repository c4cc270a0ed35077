// A minimal kernel BTF per BPF object, cached for the current boot, so that
// libbpf's CO-RE relocation searches a few thousand types instead of the
// kernel's ~126,000 (the same idea as BTFGen / `bpftool gen min_core_btf`).
//
// The first start after a boot uses the full kernel BTF and, once tracing,
// writes the minimal BTF on a background thread; later starts hand it to
// libbpf as btf_custom_path (docs/PERFORMANCE.md, section 3: ~18 ms of CPU
// less). The cache key includes the boot id, so a new kernel never meets an
// old file. Nothing here is required: any failure means "use the full BTF".
#pragma once

#include <cstddef>
#include <cstdint>
#include <future>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

struct btf;
struct bpf_object;

namespace rstwatch {

// The kernel types that CO-RE relocations of `local` (a BPF object's BTF) can
// resolve to: every INT/FLOAT/STRUCT/UNION/ENUM/ENUM64/TYPEDEF/FWD of `vmlinux`
// whose essential name (without a ___flavour suffix) names such a type in
// `local`, with the types they embed; leaf types are copied verbatim. A
// pointer to a struct or union points to an empty one of the same kind, name
// and size: CO-RE compares pointer targets by kind and name only, and
// following them would pull in the whole kernel. Not for objects that use
// bpf_core_type_id_kernel (the id would be the file's) or types that only
// modules define (libbpf searches no module BTF with btf_custom_path); the
// trace and enforce objects do neither (CoreBtfCache tests compare every
// relocation). Returns raw BTF (the format of /sys/kernel/btf/vmlinux).
// Throws Error.
std::vector<std::uint8_t> minimal_core_btf(const btf *local, const btf *vmlinux);

// Where the minimal BTF of the object with these ELF bytes lives for this
// boot: $RSTWATCH_CACHE_DIR (default /run/rstwatch) /core-btf/NAME-EUID-HASH.btf,
// HASH over the builder's format, the boot id, the kernel release and the ELF
// bytes. Empty when the boot id cannot be read, RSTWATCH_CACHE_DIR is "off",
// or the process runs set-capability (AT_SECURE: the invoker's environment
// must not pick the file).
std::string core_btf_path(std::string_view object_name, const void *elf, std::size_t elf_size);

// Whether `path` may be trusted: a regular file (not a symlink) owned by this
// user or root, not writable by others, in a directory of the same kind (a
// file anyone could swap would steer every relocation).
bool core_btf_usable(const std::string &path);

// Builds minimal_core_btf(local, the running kernel's BTF) and writes it to
// `path` atomically (a private temporary file, then rename). Throws Error.
void write_core_btf(const std::string &path, const std::vector<std::uint8_t> &local_btf_raw);

// This boot's cached minimal BTF of one object, as open_skeleton used it.
struct CoreBtfChoice {
    std::string path;     // the cache file ("" when the cache is off)
    bool used = false;    // handed to libbpf by the last open
    bool refused = false; // a load failed with it: the full kernel BTF from now on
    // Where a CoreBtfWriter should write once the session runs ("" if not).
    std::string to_write() const { return used || refused ? std::string() : path; }
    // After a load that failed with the file in use: true (reload without
    // it) and the file is no longer used; false when it was not in use (the
    // failure is the caller's).
    bool retry_without();
    // The reload without it worked: the file was the cause. Warns and removes
    // it so no later start trips on it.
    void discard(const std::string &why);
};

// Runs `load` (which opens the object through open_skeleton(..., &core) and
// loads it); when that fails with the cached file in use, runs it once more
// against the full kernel BTF and removes the file only if that worked. A
// cached minimal BTF must never be why a start fails; when the second load
// fails too, its error is the one that stands.
template <class Load> auto load_trying_core_btf(CoreBtfChoice &core, Load &&load) {
    try {
        return load();
    } catch (const Error &e) {
        if (!core.retry_without()) throw;
        auto loaded = load();
        core.discard(e.what());
        return loaded;
    }
}

// Writes the minimal BTF of a loaded object for the next start, on a thread of
// low priority, once tracing runs; failures are logged at debug level only.
// The destructor waits for it (~20 ms of CPU, once per boot and object).
class CoreBtfWriter {
  public:
    CoreBtfWriter() = default;
    CoreBtfWriter(CoreBtfWriter &&) = default;
    CoreBtfWriter &operator=(CoreBtfWriter &&) = default;
    ~CoreBtfWriter();
    // Nothing when `path` is empty (the cache was used, or is off).
    void start(const bpf_object *obj, const std::string &path);

  private:
    void start_thread(const std::string &path, std::vector<std::uint8_t> data);
    std::future<void> done_;
};

} // namespace rstwatch
