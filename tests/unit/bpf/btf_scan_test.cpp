// The piecewise BTF enum scanner against synthetic BTF (every kind's size,
// window refills, malformed input) and against the running kernel's BTF
// compared with libbpf's full parse.
#include <gtest/gtest.h>

#include <bpf/btf.h>
#include <cstring>
#include <memory>
#include <unistd.h>

#include "bpf/btf_scan.hpp"

using namespace rstwatch;

namespace {

struct Builder {
    std::vector<std::uint8_t> types;
    std::string strs = std::string(1, '\0');

    std::uint32_t str(const std::string &s) {
        auto off = std::uint32_t(strs.size());
        strs += s;
        strs.push_back('\0');
        return off;
    }
    void u32(std::uint32_t v) {
        std::uint8_t b[4];
        std::memcpy(b, &v, 4);
        types.insert(types.end(), b, b + 4);
    }
    void type(std::uint32_t name, std::uint32_t kind, std::uint32_t vlen, std::uint32_t sz = 4) {
        u32(name);
        u32((kind << 24) | vlen);
        u32(sz);
    }
    void enum_(const std::string &name, const std::vector<std::pair<std::string, int>> &vals) {
        type(str(name), 6, std::uint32_t(vals.size()));
        for (auto &[n, v] : vals) {
            u32(str(n));
            u32(std::uint32_t(v));
        }
    }
    std::vector<std::uint8_t> blob() const {
        std::vector<std::uint8_t> out(24 + types.size() + strs.size());
        std::uint16_t magic = 0xeB9F;
        std::uint32_t h[5] = {24, 0, std::uint32_t(types.size()), std::uint32_t(types.size()),
                              std::uint32_t(strs.size())};
        std::memcpy(out.data(), &magic, 2);
        out[2] = 1;
        std::memcpy(out.data() + 4, h, sizeof(h));
        if (!types.empty()) std::memcpy(out.data() + 24, types.data(), types.size());
        std::memcpy(out.data() + 24 + types.size(), strs.data(), strs.size());
        return out;
    }
};

BtfEnumScan scan(const std::vector<std::uint8_t> &b, const char *name = "sk_rst_reason") {
    BtfRead read = [&b](std::uint64_t off, void *dst, std::size_t len) {
        if (off > b.size() || len > b.size() - off) return false;
        std::memcpy(dst, b.data() + off, len);
        return true;
    };
    return scan_btf_enum(read, b.size(), name);
}

// One of every kind with trailing data, many times, so the type window has
// to refill across record boundaries before the enum comes.
Builder busy() {
    Builder b;
    std::uint32_t n = b.str("x");
    for (int i = 0; i < 6000; ++i) {
        b.type(n, 1, 0); // INT
        b.u32(32);
        b.type(n, 4, 2); // STRUCT, 2 members
        for (int m = 0; m < 2; ++m) {
            b.u32(n);
            b.u32(1);
            b.u32(0);
        }
        b.type(0, 2, 0, 1); // PTR
        b.type(0, 3, 0, 0); // ARRAY
        b.u32(1);
        b.u32(1);
        b.u32(4);
        b.type(0, 13, 1, 1); // FUNC_PROTO, 1 param
        b.u32(0);
        b.u32(1);
        b.type(n, 14, 0, 1); // VAR
        b.u32(0);
        b.type(n, 17, 0, 1); // DECL_TAG
        b.u32(0);
    }
    b.type(b.str("sk_rst_reason"), 19, 1); // ENUM64 of the same name: not it
    b.u32(b.str("WRONG"));
    b.u32(0);
    b.u32(0);
    b.enum_("other", {{"A", 1}});
    return b;
}

} // namespace

TEST(BtfScan, FindsTheEnumAfterEveryKindOfType) {
    Builder b = busy();
    b.enum_("sk_rst_reason", {{"SK_RST_REASON_NOT_SPECIFIED", 0},
                              {"SK_RST_REASON_NO_SOCKET", 1},
                              {"SK_RST_REASON_TCP_ABORT_ON_DATA", 7}});
    auto blob = b.blob();
    ASSERT_GT(blob.size(), 256u * 1024); // several 64 KiB windows
    auto r = scan(blob);
    ASSERT_TRUE(r.ok) << r.why;
    ASSERT_TRUE(r.found);
    ASSERT_EQ(r.values.size(), 3u);
    EXPECT_EQ(r.values[0],
              (std::pair<std::string, std::int64_t>{"SK_RST_REASON_NOT_SPECIFIED", 0}));
    EXPECT_EQ(r.values[2],
              (std::pair<std::string, std::int64_t>{"SK_RST_REASON_TCP_ABORT_ON_DATA", 7}));
}

TEST(BtfScan, AbsentEnumIsNotAnError) {
    auto r = scan(busy().blob());
    EXPECT_TRUE(r.ok) << r.why;
    EXPECT_FALSE(r.found);
    // A prefix of an existing name does not match.
    Builder b;
    b.enum_("sk_rst_reason_old", {{"A", 1}});
    r = scan(b.blob());
    EXPECT_TRUE(r.ok);
    EXPECT_FALSE(r.found);
}

TEST(BtfScan, RejectsWhatItCannotWalk) {
    Builder b;
    b.type(0, 31, 0); // a kind newer than the scanner
    b.enum_("sk_rst_reason", {{"A", 1}});
    auto r = scan(b.blob());
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.why.find("unknown BTF kind 31"), std::string::npos) << r.why;

    auto blob = busy().blob();
    blob.resize(blob.size() / 2);
    EXPECT_FALSE(scan(blob).ok);
    blob[0] = 0;
    EXPECT_FALSE(scan(blob).ok);
    EXPECT_FALSE(scan({}).ok);
}

TEST(BtfScan, AgreesWithLibbpfOnTheRunningKernel) {
    const char *path = "/sys/kernel/btf/vmlinux";
    if (access(path, R_OK) != 0) GTEST_SKIP() << "no readable " << path;
    std::unique_ptr<btf, void (*)(btf *)> full(btf__parse_raw(path), btf__free);
    ASSERT_TRUE(full);
    auto r = scan_btf_enum_file(path, "sk_rst_reason");
    ASSERT_TRUE(r.ok) << r.why;
    int id = btf__find_by_name_kind(full.get(), "sk_rst_reason", BTF_KIND_ENUM);
    ASSERT_EQ(r.found, id > 0);
    if (id <= 0) return;
    const btf_type *t = btf__type_by_id(full.get(), id);
    ASSERT_EQ(r.values.size(), btf_vlen(t));
    const struct btf_enum *e = btf_enum(t);
    for (unsigned i = 0; i < btf_vlen(t); ++i) {
        EXPECT_EQ(r.values[i].first, btf__name_by_offset(full.get(), e[i].name_off));
        EXPECT_EQ(r.values[i].second, e[i].val);
    }
}
