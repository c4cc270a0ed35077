#include "bpf/btf_scan.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fd.hpp"

namespace rstwatch {

namespace {

// include/uapi/linux/btf.h, which the format is defined by.
constexpr std::uint16_t kBtfMagic = 0xeB9F;
constexpr std::uint32_t kKindEnum = 6;
constexpr std::size_t kChunk = 64 * 1024;

std::uint32_t u32(const std::uint8_t *p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Bytes that follow the 12-byte common part of a type, by kind; -1: unknown.
long trailing_bytes(std::uint32_t kind, std::uint32_t vlen) {
    switch (kind) {
    case 1:  // INT
    case 14: // VAR
    case 17: // DECL_TAG
        return 4;
    case 2:  // PTR
    case 7:  // FWD
    case 8:  // TYPEDEF
    case 9:  // VOLATILE
    case 10: // CONST
    case 11: // RESTRICT
    case 12: // FUNC
    case 16: // FLOAT
    case 18: // TYPE_TAG
        return 0;
    case 3: // ARRAY
        return 12;
    case 4:  // STRUCT
    case 5:  // UNION
    case 15: // DATASEC
    case 19: // ENUM64
        return long(vlen) * 12;
    case 6:  // ENUM
    case 13: // FUNC_PROTO
        return long(vlen) * 8;
    }
    return -1;
}

// A read-only window over [base, base + len) of the data, refilled forwards.
class Window {
  public:
    Window(const BtfRead &read, std::uint64_t base, std::uint64_t len)
        : read_(read), base_(base), len_(len) {}
    // n bytes at section offset off, or nullptr if out of range / unreadable.
    const std::uint8_t *at(std::uint64_t off, std::size_t n) {
        if (off > len_ || n > len_ - off) return nullptr;
        if (off >= start_ && off + n <= start_ + buf_.size()) return buf_.data() + (off - start_);
        std::size_t want = std::size_t(std::min<std::uint64_t>(std::max(n, kChunk), len_ - off));
        buf_.resize(want);
        if (!read_(base_ + off, buf_.data(), want)) {
            buf_.clear();
            return nullptr;
        }
        start_ = off;
        return buf_.data();
    }
    // The NUL-terminated string at off (names are short; 256 bytes at most).
    std::optional<std::string_view> str(std::uint64_t off) {
        if (off >= len_) return std::nullopt;
        std::size_t n = std::size_t(std::min<std::uint64_t>(256, len_ - off));
        const std::uint8_t *p = at(off, n);
        if (!p) return std::nullopt;
        const void *nul = std::memchr(p, 0, n);
        if (!nul) return std::nullopt;
        return std::string_view(reinterpret_cast<const char *>(p),
                                std::size_t(static_cast<const std::uint8_t *>(nul) - p));
    }

  private:
    const BtfRead &read_;
    std::uint64_t base_, len_;
    std::uint64_t start_ = 0;
    std::vector<std::uint8_t> buf_;
};

BtfEnumScan fail(std::string why) {
    BtfEnumScan r;
    r.why = std::move(why);
    return r;
}

} // namespace

BtfEnumScan scan_btf_enum(const BtfRead &read, std::uint64_t size, std::string_view name) {
    std::uint8_t hdr[24];
    if (size < sizeof(hdr) || !read(0, hdr, sizeof(hdr))) return fail("no BTF header");
    std::uint16_t magic;
    std::memcpy(&magic, hdr, 2);
    if (magic != kBtfMagic) return fail("not BTF of this byte order");
    const std::uint32_t hdr_len = u32(hdr + 4), type_off = u32(hdr + 8), type_len = u32(hdr + 12),
                        str_off = u32(hdr + 16), str_len = u32(hdr + 20);
    if (hdr_len < sizeof(hdr) || std::uint64_t(hdr_len) + type_off + type_len > size ||
        std::uint64_t(hdr_len) + str_off + str_len > size)
        return fail("BTF sections out of bounds");

    // Pass 1, types: every enum's name offset and where its entries are.
    struct Candidate {
        std::uint32_t name_off;
        std::uint64_t entries_off;
        std::uint32_t vlen;
    };
    std::vector<Candidate> enums;
    Window types(read, hdr_len + type_off, type_len);
    std::uint64_t off = 0;
    while (off < type_len) {
        const std::uint8_t *t = types.at(off, 12);
        if (!t) return fail("truncated type at offset " + std::to_string(off));
        const std::uint32_t info = u32(t + 4), kind = (info >> 24) & 0x1f, vlen = info & 0xffff;
        const long extra = trailing_bytes(kind, vlen);
        if (extra < 0) return fail("unknown BTF kind " + std::to_string(kind));
        if (kind == kKindEnum) enums.push_back({u32(t), off + 12, vlen});
        off += 12 + std::uint64_t(extra);
    }
    if (off != type_len) return fail("type section does not end on a type");

    // Pass 2, strings, in offset order so the window only moves forwards.
    std::sort(enums.begin(), enums.end(),
              [](const Candidate &a, const Candidate &b) { return a.name_off < b.name_off; });
    Window strs(read, hdr_len + str_off, str_len);
    BtfEnumScan res;
    res.ok = true;
    for (const auto &c : enums) {
        const std::uint8_t *p = strs.at(c.name_off, name.size() + 1);
        if (!p || std::memcmp(p, name.data(), name.size()) != 0 || p[name.size()] != 0) continue;
        const std::uint8_t *e = types.at(c.entries_off, std::size_t(c.vlen) * 8);
        if (!e) return fail("truncated enum entries");
        std::vector<std::pair<std::uint32_t, std::int32_t>> raw(c.vlen);
        for (std::uint32_t i = 0; i < c.vlen; ++i) {
            raw[i].first = u32(e + 8 * i);
            std::memcpy(&raw[i].second, e + 8 * i + 4, 4);
        }
        for (auto [noff, val] : raw) {
            auto s = strs.str(noff);
            if (!s) return fail("bad enum value name");
            res.values.emplace_back(std::string(*s), val);
        }
        res.found = true;
        break;
    }
    return res;
}

BtfEnumScan scan_btf_enum_file(const std::string &path, std::string_view name) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || fstat(fd.get(), &st) != 0) return fail(path + ": " + std::strerror(errno));
    BtfRead read = [&fd](std::uint64_t off, void *dst, std::size_t len) {
        auto *p = static_cast<std::uint8_t *>(dst);
        while (len) {
            ssize_t n = pread(fd.get(), p, len, off_t(off));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            p += n;
            off += std::uint64_t(n);
            len -= std::size_t(n);
        }
        return true;
    };
    return scan_btf_enum(read, std::uint64_t(st.st_size), name);
}

} // namespace rstwatch
