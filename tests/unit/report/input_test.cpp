// `rstwatch report` input: line chunking, gzip by magic bytes, damaged gzip,
// overlong lines, files that cannot be read.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "../report_fixtures.hpp"
#include "util/error.hpp"
#include "report/input.hpp"

using namespace rstwatch;

namespace {

// Every line the reader hands out, and the count of skipped overlong ones.
std::vector<std::string> lines_of(LineReader &r, std::uint64_t *skipped = nullptr) {
    std::vector<std::string> out;
    LineChunk c;
    while (r.next(c)) {
        EXPECT_GE(c.capacity, c.size + kReportPadding);
        if (skipped) *skipped += c.skipped_long_lines;
        std::string_view s(c.data, c.size);
        while (!s.empty()) {
            auto nl = s.find('\n');
            out.emplace_back(s.substr(0, nl));
            s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
        }
    }
    return out;
}

std::string numbered(int n) {
    std::string s;
    for (int i = 0; i < n; ++i)
        s += "line-" + std::to_string(i) + "-" + std::string(std::size_t(i % 37), 'x') + "\n";
    return s;
}

} // namespace

TEST(ReportInput, LinesSurviveChunkBoundariesWithASmallBuffer) {
    auto r = LineReader::from_memory(numbered(500), "t", 64);
    auto lines = lines_of(*r);
    ASSERT_EQ(lines.size(), 500u);
    EXPECT_EQ(lines[0], "line-0-");
    EXPECT_EQ(lines[499], "line-499-" + std::string(499 % 37, 'x'));
    EXPECT_FALSE(r->stats().gzip);
    EXPECT_EQ(r->stats().bytes, numbered(500).size());
}

TEST(ReportInput, LastLineWithoutNewlineIsKept) {
    auto r = LineReader::from_memory("a\nb\nlast", "t", 64);
    EXPECT_EQ(lines_of(*r), (std::vector<std::string>{"a", "b", "last"}));
}

TEST(ReportInput, GzipIsDetectedByMagicBytesNotByName) {
    const std::string text = numbered(2000);
    auto r = LineReader::from_memory(rf::gzip(text), "plain-name.ndjson", 4096);
    auto lines = lines_of(*r);
    ASSERT_EQ(lines.size(), 2000u);
    EXPECT_EQ(lines[1234], "line-1234-" + std::string(1234 % 37, 'x'));
    EXPECT_TRUE(r->stats().gzip);
    EXPECT_EQ(r->stats().bytes, text.size());
    EXPECT_FALSE(r->stats().truncated);
    EXPECT_FALSE(r->stats().corrupt);
}

TEST(ReportInput, ConcatenatedGzipMembersAreOneStream) {
    auto r = LineReader::from_memory(rf::gzip("a\nb\n") + rf::gzip("c\n"), "t");
    EXPECT_EQ(lines_of(*r), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_FALSE(r->stats().corrupt);
}

TEST(ReportInput, TruncatedGzipKeepsWhatWasDecompressedAndSaysSo) {
    const std::string text = numbered(3000);
    std::string gz = rf::gzip(text);
    gz.resize(gz.size() / 2);
    auto r = LineReader::from_memory(gz, "t", 4096);
    auto lines = lines_of(*r);
    EXPECT_TRUE(r->stats().truncated);
    EXPECT_FALSE(r->stats().corrupt);
    ASSERT_GT(lines.size(), 100u);
    EXPECT_LT(lines.size(), 3000u);
    EXPECT_EQ(lines[100], "line-100-" + std::string(100 % 37, 'x'));
}

TEST(ReportInput, CorruptGzipIsRecordedNotThrown) {
    std::string gz = rf::gzip(numbered(100));
    for (std::size_t i = 20; i < 40 && i < gz.size(); ++i)
        gz[i] = char(0xff);
    auto r = LineReader::from_memory(gz, "t");
    EXPECT_NO_THROW(lines_of(*r));
    EXPECT_TRUE(r->stats().corrupt);
    EXPECT_FALSE(r->stats().gzip_error.empty());
}

TEST(ReportInput, TrailingGarbageAfterGzipIsCorrupt) {
    auto r = LineReader::from_memory(rf::gzip("a\n") + "garbage", "t");
    EXPECT_EQ(lines_of(*r), (std::vector<std::string>{"a"}));
    EXPECT_TRUE(r->stats().corrupt);
}

TEST(ReportInput, LinesLongerThanTheBufferAreSkippedAndCounted) {
    std::string text = "short\n" + std::string(1000, 'y') + "\nafter\n" + std::string(300, 'z');
    auto r = LineReader::from_memory(text, "t", 128);
    std::uint64_t skipped = 0;
    auto lines = lines_of(*r, &skipped);
    EXPECT_EQ(lines, (std::vector<std::string>{"short", "after"}));
    EXPECT_EQ(skipped, 2u);
}

TEST(ReportInput, MissingFileIsUsageErrorNamingIt) {
    try {
        LineReader::open("/nonexistent/rstwatch-report-input.ndjson");
        FAIL() << "no exception";
    } catch (const UsageError &e) {
        EXPECT_EQ(e.code(), Exit::usage);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/rstwatch-report-input.ndjson"),
                  std::string::npos);
    }
    EXPECT_THROW(LineReader::check("/nonexistent/x.ndjson"), UsageError);
}

TEST(ReportInput, DirectoryIsUsageError) {
    EXPECT_THROW(LineReader::open("/tmp"), UsageError);
    EXPECT_THROW(LineReader::check("/tmp"), UsageError);
}

TEST(ReportInput, ReadsADescriptorSuchAsAPipe) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const std::string gz = rf::gzip("x\ny\n");
    ASSERT_EQ(write(fds[1], gz.data(), gz.size()), ssize_t(gz.size()));
    close(fds[1]);
    auto r = LineReader::from_fd(fds[0], "<stdin>", true);
    EXPECT_EQ(lines_of(*r), (std::vector<std::string>{"x", "y"}));
    EXPECT_TRUE(r->stats().gzip);
}

TEST(ReportInput, EmptyInputHasNoLines) {
    auto r = LineReader::from_memory("", "t");
    EXPECT_TRUE(lines_of(*r).empty());
}
