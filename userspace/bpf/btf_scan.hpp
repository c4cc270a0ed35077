// Finds one enum in raw BTF (the format of /sys/kernel/btf/vmlinux) by reading
// the data piecewise through a small window, instead of loading it whole: the
// kernel's BTF is ~5.5 MB, and a full parse costs ~11 MB of peak memory and
// ~12 ms of CPU (mostly page faults) at start-up, on top of libbpf's own parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rstwatch {

// Reads exactly len bytes at offset off; false if it cannot.
using BtfRead = std::function<bool(std::uint64_t off, void *dst, std::size_t len)>;

struct BtfEnumScan {
    bool ok = false;    // the data was BTF this scanner understands
    bool found = false; // the enum exists
    std::vector<std::pair<std::string, std::int64_t>> values; // in declaration order
    std::string why;                                          // when !ok
};

// The first BTF_KIND_ENUM named `name` in BTF of `size` bytes.
BtfEnumScan scan_btf_enum(const BtfRead &read, std::uint64_t size, std::string_view name);
BtfEnumScan scan_btf_enum_file(const std::string &path, std::string_view name);

} // namespace rstwatch
