#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "trace/loss_report.hpp"

using namespace rstwatch;
using json = nlohmann::json;

namespace {

class MemorySink final : public Sink {
  public:
    explicit MemorySink(std::string &to) : to_(to) {}
    WriteResult write(std::string_view lines) override {
        to_.append(lines);
        return {WriteStatus::ok, lines.size()};
    }

  private:
    std::string &to_;
};

std::vector<json> lines(const std::string &text) {
    std::vector<json> out;
    std::size_t pos = 0, nl;
    while ((nl = text.find('\n', pos)) != std::string::npos) {
        out.push_back(json::parse(text.substr(pos, nl - pos)));
        pos = nl + 1;
    }
    return out;
}

} // namespace

TEST(LostReporter, RateLimitRecordCountsPerTypeSinceTheLastOne) {
    std::string written;
    Output out(make_json_formatter("h"), std::make_unique<MemorySink>(written));
    EventRateLimiter lim(1, 0);
    LostReporter rep;
    Counters kernel;
    lim.admit(EventKind::tcp_reset, 0); // the one token
    for (int i = 0; i < 5; ++i)
        lim.admit(EventKind::tcp_reset, 0);
    lim.admit(EventKind::tcp_timeout, 0);
    lim.admit(EventKind::connection_closed, 0);
    rep.check(kernel, lim, out, 1);
    rep.check(kernel, lim, out, 2); // nothing new: no record
    lim.admit(EventKind::keepalive_set, 0);
    rep.check(kernel, lim, out, 3);
    out.flush();
    auto ls = lines(written);
    ASSERT_EQ(ls.size(), 2u);
    EXPECT_EQ(ls[0]["reason"], "rate_limit");
    EXPECT_EQ(ls[0]["lost"], 7);
    EXPECT_EQ(ls[0]["total"], 7);
    EXPECT_EQ(
        ls[0]["by_event"],
        json::parse(R"({"tcp_reset":5,"tcp_timeout":1,"connection_closed":1,"keepalive_set":0})"));
    EXPECT_EQ(
        ls[0]["by_type"],
        json::parse(R"({"tcp_reset":5,"keepalive_set":0,"connection":2,"keepalive_enforced":0})"));
    EXPECT_EQ(ls[1]["lost"], 1);
    EXPECT_EQ(ls[1]["total"], 8);
    EXPECT_EQ(ls[1]["by_event"]["keepalive_set"], 1);
    EXPECT_EQ(out.emitted(), 0u); // lost records are not counted as events
}

TEST(LostReporter, RingBufferLossesKeepTheirOwnRecordWithNullByEvent) {
    std::string written;
    Output out(make_json_formatter("h"), std::make_unique<MemorySink>(written));
    EventRateLimiter lim(0, 0);
    LostReporter rep;
    Counters kernel;
    kernel.v[RW_CNT_LOST_RESET] = 4;
    kernel.v[RW_CNT_LOST_CLOSE] = 1;
    rep.check(kernel, lim, out, 1);
    out.flush();
    auto ls = lines(written);
    ASSERT_EQ(ls.size(), 1u);
    EXPECT_EQ(ls[0]["reason"], "ringbuf_full");
    EXPECT_EQ(ls[0]["lost"], 5);
    EXPECT_TRUE(ls[0].contains("by_event"));
    EXPECT_TRUE(ls[0]["by_event"].is_null()); // always present, null for other reasons
}
