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

struct btf;
struct bpf_object;

namespace rstwatch {

// The kernel types that CO-RE relocations of `local` (a BPF object's BTF) can
// resolve to: every STRUCT/UNION/ENUM/ENUM64/TYPEDEF/FWD of `vmlinux` whose
// essential name (without a ___flavour suffix) names such a type in `local`,
// with the types they embed. Pointers keep their kind but point to a forward
// declaration (or void): CO-RE matches pointer fields without looking at
// their targets, and following them would pull in the whole kernel.
// Returns raw BTF (the format of /sys/kernel/btf/vmlinux). Throws Error.
std::vector<std::uint8_t> minimal_core_btf(const btf *local, const btf *vmlinux);

// Where the minimal BTF of the object with these ELF bytes lives for this
// boot: $RSTWATCH_CACHE_DIR (default /run/rstwatch) /core-btf/NAME-HASH.btf,
// HASH over the boot id, the kernel release and the ELF bytes. Empty when
// the boot id cannot be read or RSTWATCH_CACHE_DIR is "off".
std::string core_btf_path(std::string_view object_name, const void *elf, std::size_t elf_size);

// Whether `path` may be trusted: a regular file owned by this user, not
// writable by others, in a directory owned by this user and not writable by
// others (a file anyone could swap would steer every relocation).
bool core_btf_usable(const std::string &path);

// Builds minimal_core_btf(local, the running kernel's BTF) and writes it to
// `path` atomically (a private temporary file, then rename). Throws Error.
void write_core_btf(const std::string &path, const std::vector<std::uint8_t> &local_btf_raw);

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
    std::future<void> done_;
};

} // namespace rstwatch
