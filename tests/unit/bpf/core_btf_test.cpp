// The minimal kernel BTF (bpf/core_btf): which types it keeps, that it keeps
// them exactly (sizes, member offsets, bit-fields, enum values), and when a
// cached file is trusted. Synthetic BTF built with libbpf: no privileges.
#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf/core_btf.hpp"

using namespace rstwatch;

namespace {

using BtfPtr = std::unique_ptr<btf, void (*)(btf *)>;

BtfPtr empty_btf() {
    return BtfPtr(btf__new_empty(), btf__free);
}

// A small "kernel": struct sock embeds struct sock_common, points to struct
// foo, has a bit-field and an array; an enum with a negative value; a typedef
// of a function type; an unrelated struct.
BtfPtr fake_vmlinux() {
    BtfPtr b = empty_btf();
    btf *k = b.get();
    const int i32 = btf__add_int(k, "int", 4, BTF_INT_SIGNED); // 1
    const int u32 = btf__add_int(k, "unsigned int", 4, 0);     // 2
    const int common = btf__add_struct(k, "sock_common", 8);   // 3
    btf__add_field(k, "skc_daddr", u32, 0, 0);
    btf__add_field(k, "skc_state", i32, 32, 0);
    const int foo = btf__add_struct(k, "foo", 4); // 4
    btf__add_field(k, "x", i32, 0, 0);
    const int foo_ptr = btf__add_ptr(k, foo);        // 5
    const int arr = btf__add_array(k, u32, i32, 4);  // 6
    const int sock = btf__add_struct(k, "sock", 48); // 7
    btf__add_field(k, "__sk_common", common, 0, 0);
    btf__add_field(k, "sk_foo", foo_ptr, 64, 0);
    btf__add_field(k, "sk_bits", u32, 128, 3);
    btf__add_field(k, "sk_more", u32, 131, 5);
    btf__add_field(k, "sk_arr", arr, 160, 0);
    btf__add_enum(k, "sk_rst_reason", 4); // 8
    btf__add_enum_value(k, "SK_RST_REASON_NOT_SPECIFIED", 0);
    btf__add_enum_value(k, "SK_RST_REASON_NEG", -2);
    const int proto = btf__add_func_proto(k, i32); // 9
    btf__add_func_param(k, "a", u32);
    btf__add_typedef(k, "handler_t", proto); // 10
    btf__add_struct(k, "unrelated", 4);      // 11
    btf__add_field(k, "y", i32, 0, 0);
    btf__add_enum(k, "e820_type", 4); // 12, unsigned with a value >= 2^31
    btf__add_enum_value(k, "E820_TYPE_RAM", 1);
    btf__add_enum_value(k, "E820_TYPE_RESERVED_KERN", 0x80000080ll);
    const int page = btf__add_struct(k, "page", 64);
    btf__add_field(k, "flags", u32, 0, 0);
    btf__add_typedef(k, "pgtable_t", btf__add_ptr(k, page));
    return b;
}

// What a BPF object might declare: flavoured and plain local types.
BtfPtr fake_local() {
    BtfPtr b = empty_btf();
    btf *l = b.get();
    const int i32 = btf__add_int(l, "int", 4, BTF_INT_SIGNED);
    btf__add_struct(l, "sock___old", 4);
    btf__add_field(l, "whatever", i32, 0, 0);
    btf__add_enum(l, "sk_rst_reason", 4);
    btf__add_enum_value(l, "SK_RST_REASON_NOT_SPECIFIED", 0);
    btf__add_typedef(l, "handler_t", i32);
    btf__add_struct(l, "not_in_kernel", 4);
    btf__add_enum(l, "e820_type", 4);
    btf__add_typedef(l, "pgtable_t", i32);
    return b;
}

BtfPtr minimal(const btf *local, const btf *vmlinux) {
    std::vector<std::uint8_t> raw = minimal_core_btf(local, vmlinux);
    BtfPtr out(btf__new(raw.data(), std::uint32_t(raw.size())), btf__free);
    EXPECT_TRUE(out) << "the minimal BTF must parse back";
    return out;
}

const btf_type *find(const btf *b, const char *name, int kind) {
    const int id = btf__find_by_name_kind(b, name, kind);
    return id > 0 ? btf__type_by_id(b, id) : nullptr;
}

} // namespace

TEST(CoreBtf, KeepsTheTypesTheObjectNamesWithWhatTheyEmbed) {
    BtfPtr k = fake_vmlinux(), l = fake_local();
    BtfPtr m = minimal(l.get(), k.get());
    ASSERT_TRUE(m);
    EXPECT_TRUE(find(m.get(), "sock", BTF_KIND_STRUCT)) << "sock___old names sock";
    EXPECT_TRUE(find(m.get(), "sock_common", BTF_KIND_STRUCT)) << "embedded in sock";
    EXPECT_TRUE(find(m.get(), "sk_rst_reason", BTF_KIND_ENUM));
    EXPECT_TRUE(find(m.get(), "handler_t", BTF_KIND_TYPEDEF));
    // Only pointed to: an empty struct of the same name and size, enough for
    // CO-RE's compatibility rules on pointers, not the members behind it.
    const btf_type *foo = find(m.get(), "foo", BTF_KIND_STRUCT);
    ASSERT_TRUE(foo);
    EXPECT_EQ(btf_vlen(foo), 0u);
    EXPECT_EQ(foo->size, 4u);
    EXPECT_FALSE(find(m.get(), "unrelated", BTF_KIND_STRUCT));
    EXPECT_LT(btf__type_cnt(m.get()), btf__type_cnt(k.get()));
}

TEST(CoreBtf, KeptTypesAreExact) {
    BtfPtr k = fake_vmlinux(), l = fake_local();
    BtfPtr m = minimal(l.get(), k.get());
    ASSERT_TRUE(m);
    const btf_type *ks = find(k.get(), "sock", BTF_KIND_STRUCT);
    const btf_type *ms = find(m.get(), "sock", BTF_KIND_STRUCT);
    ASSERT_TRUE(ks && ms);
    EXPECT_EQ(ms->size, ks->size);
    ASSERT_EQ(btf_vlen(ms), btf_vlen(ks));
    for (unsigned i = 0; i < btf_vlen(ks); ++i) {
        SCOPED_TRACE(btf__name_by_offset(k.get(), btf_members(ks)[i].name_off));
        EXPECT_STREQ(btf__name_by_offset(m.get(), btf_members(ms)[i].name_off),
                     btf__name_by_offset(k.get(), btf_members(ks)[i].name_off));
        EXPECT_EQ(btf_member_bit_offset(ms, i), btf_member_bit_offset(ks, i));
        EXPECT_EQ(btf_member_bitfield_size(ms, i), btf_member_bitfield_size(ks, i));
        const btf_type *kt = btf__type_by_id(k.get(), btf_members(ks)[i].type);
        const btf_type *mt = btf__type_by_id(m.get(), btf_members(ms)[i].type);
        EXPECT_EQ(btf_kind(mt), btf_kind(kt)) << "a pointer stays a pointer, an array an array";
    }
    const btf_type *arr = btf__type_by_id(m.get(), btf_members(ms)[4].type);
    ASSERT_TRUE(btf_is_array(arr));
    EXPECT_EQ(btf_array(arr)->nelems, 4u);
    EXPECT_EQ(btf__resolve_size(m.get(), btf_members(ms)[4].type), 16);

    const btf_type *e = find(m.get(), "sk_rst_reason", BTF_KIND_ENUM);
    ASSERT_TRUE(e);
    ASSERT_EQ(btf_vlen(e), 2u);
    EXPECT_STREQ(btf__name_by_offset(m.get(), btf_enum(e)[1].name_off), "SK_RST_REASON_NEG");
    EXPECT_EQ(btf_enum(e)[1].val, -2);

    // An unsigned enum with a value >= 2^31 stays unsigned (FIELD_SIGNED
    // relocations and BPF_CORE_READ_BITFIELD depend on it).
    const btf_type *e820 = find(m.get(), "e820_type", BTF_KIND_ENUM);
    ASSERT_TRUE(e820);
    ASSERT_FALSE(btf_kflag(find(k.get(), "e820_type", BTF_KIND_ENUM)));
    EXPECT_FALSE(btf_kflag(e820));
    EXPECT_EQ(std::uint32_t(btf_enum(e820)[1].val), 0x80000080u);

    // A typedef of a pointer keeps a pointer to a struct of that name and size.
    const btf_type *pg = find(m.get(), "pgtable_t", BTF_KIND_TYPEDEF);
    ASSERT_TRUE(pg);
    const btf_type *ptr = btf__type_by_id(m.get(), pg->type);
    ASSERT_TRUE(btf_is_ptr(ptr));
    const btf_type *target = btf__type_by_id(m.get(), ptr->type);
    ASSERT_TRUE(target && btf_is_struct(target));
    EXPECT_STREQ(btf__name_by_offset(m.get(), target->name_off), "page");
    EXPECT_EQ(target->size, 64u);

    // Integer types are copied verbatim (encoding, bits, offset).
    const btf_type *kint = find(k.get(), "int", BTF_KIND_INT);
    const btf_type *mint = find(m.get(), "int", BTF_KIND_INT);
    ASSERT_TRUE(kint && mint);
    EXPECT_EQ(*reinterpret_cast<const std::uint32_t *>(mint + 1),
              *reinterpret_cast<const std::uint32_t *>(kint + 1));

    const btf_type *td = find(m.get(), "handler_t", BTF_KIND_TYPEDEF);
    ASSERT_TRUE(td);
    const btf_type *proto = btf__type_by_id(m.get(), td->type);
    ASSERT_TRUE(btf_is_func_proto(proto));
    EXPECT_EQ(btf_vlen(proto), 1u);
}

namespace {
// RSTWATCH_CACHE_DIR for one scope, unset again even when an assertion fails.
struct CacheDirEnv {
    explicit CacheDirEnv(const char *v) { setenv("RSTWATCH_CACHE_DIR", v, 1); }
    ~CacheDirEnv() { unsetenv("RSTWATCH_CACHE_DIR"); }
};
} // namespace

TEST(CoreBtf, CachePathFollowsTheObjectAndCanBeTurnedOff) {
    const char a[] = "object A", b[] = "object B";
    const std::string me = std::to_string(geteuid());
    {
        CacheDirEnv env("/somewhere");
        const std::string pa = core_btf_path("trace", a, sizeof(a));
        EXPECT_EQ(pa.rfind("/somewhere/core-btf/trace-" + me + "-", 0), 0u) << pa;
        EXPECT_EQ(pa.substr(pa.size() - 4), ".btf");
        EXPECT_EQ(core_btf_path("trace", a, sizeof(a)), pa);
        EXPECT_NE(core_btf_path("trace", b, sizeof(b)), pa) << "another build, another file";
    }
    {
        CacheDirEnv env("off");
        EXPECT_EQ(core_btf_path("trace", a, sizeof(a)), "");
    }
    EXPECT_EQ(core_btf_path("trace", a, sizeof(a)).rfind("/run/rstwatch/core-btf/", 0), 0u);
}

TEST(CoreBtf, OnlyAPrivateFileInAPrivateDirectoryIsTrusted) {
    char tmpl[] = "/tmp/rw_core_btf_unit_XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    const std::string dir = tmpl, file = dir + "/trace-0.btf";
    std::ofstream(file) << "x";
    ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
    ASSERT_EQ(chmod(file.c_str(), 0600), 0);
    EXPECT_TRUE(core_btf_usable(file));
    ASSERT_EQ(chmod(file.c_str(), 0620), 0);
    EXPECT_FALSE(core_btf_usable(file)) << "group-writable file";
    ASSERT_EQ(chmod(file.c_str(), 0600), 0);
    ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
    EXPECT_FALSE(core_btf_usable(file)) << "anyone could swap it";
    ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
    const std::string link = dir + "/link.btf";
    ASSERT_EQ(symlink(file.c_str(), link.c_str()), 0);
    EXPECT_FALSE(core_btf_usable(link)) << "a symlink";
    EXPECT_FALSE(core_btf_usable(dir + "/missing.btf"));
    EXPECT_FALSE(core_btf_usable(""));
    unlink(link.c_str());
    unlink(file.c_str());
    rmdir(dir.c_str());
}
