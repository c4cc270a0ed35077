#include <gtest/gtest.h>
#include <vector>

#include "../fixtures.hpp"
#include "event/decode.hpp"

using namespace rstwatch;

TEST(Decode, ResetRoundTrip) {
    rw_reset r = fixtures::reset();
    auto rec = decode_record(&r, sizeof(r));
    ASSERT_TRUE(rec);
    auto *d = std::get_if<rw_reset>(&*rec);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->owner.pid, 4242u);
    EXPECT_EQ(d->ep.local_port, 40000);
    EXPECT_EQ(d->tm.idle_ms, 7000u);
}

TEST(Decode, RejectsWhatBpfCannotProduce) {
    std::string why;
    rw_reset r = fixtures::reset();
    EXPECT_FALSE(decode_record(&r, sizeof(r) - 1, &why));
    EXPECT_EQ(why, "record size does not match its type");

    r.hdr.type = 99;
    EXPECT_FALSE(decode_record(&r, sizeof(r), &why));
    EXPECT_EQ(why, "unknown record type");

    r = fixtures::reset();
    r.direction = 7;
    EXPECT_FALSE(decode_record(&r, sizeof(r), &why));
    EXPECT_EQ(why, "unknown reset direction");

    r = fixtures::reset();
    r.ep.family = 3;
    EXPECT_FALSE(decode_record(&r, sizeof(r), &why));
    EXPECT_EQ(why, "unknown address family");

    r = fixtures::reset();
    r.hdr.size = 12;
    EXPECT_FALSE(decode_record(&r, sizeof(r), &why));

    EXPECT_FALSE(decode_record(nullptr, 0, &why));
    std::uint8_t tiny[3] = {1, 0, 0};
    EXPECT_FALSE(decode_record(tiny, sizeof(tiny), &why));
}

TEST(Decode, UnterminatedCommIsTerminated) {
    rw_reset r = fixtures::reset();
    std::memset(r.owner.comm, 'A', sizeof(r.owner.comm));
    auto rec = decode_record(&r, sizeof(r));
    ASSERT_TRUE(rec);
    EXPECT_EQ(std::string(std::get<rw_reset>(*rec).owner.comm), std::string(15, 'A'));
}

TEST(Decode, StreamSplitsRecordsAndKeepsPartialTail) {
    std::vector<std::uint8_t> buf;
    for (int i = 0; i < 3; ++i) {
        rw_snapshot s = fixtures::snapshot(100 + i, "p", 1000 + i, i);
        auto *p = reinterpret_cast<std::uint8_t *>(&s);
        buf.insert(buf.end(), p, p + sizeof(s));
    }
    std::vector<std::uint32_t> pids;
    std::size_t used = decode_stream(buf.data(), buf.size() - 10, [&](const Record &r) {
        pids.push_back(std::get<rw_snapshot>(r).owner.pid);
    });
    EXPECT_EQ(pids, (std::vector<std::uint32_t>{100, 101}));
    EXPECT_EQ(used, 2 * sizeof(rw_snapshot));
}

TEST(Decode, StreamStopsAtGarbage) {
    std::vector<std::uint8_t> buf(64, 0xff);
    std::string why;
    std::size_t used = decode_stream(
        buf.data(), buf.size(), [](const Record &) { FAIL(); }, &why);
    EXPECT_EQ(used, 0u);
    EXPECT_FALSE(why.empty());
}
