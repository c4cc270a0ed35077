#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.hpp"
#include "output/sink.hpp"

using namespace rstwatch;
namespace fs = std::filesystem;

namespace {

struct Dir {
    std::string path;
    Dir() {
        char t[] = "/tmp/rw-sink-XXXXXX";
        path = mkdtemp(t);
    }
    ~Dir() { fs::remove_all(path); }
};

std::string lines(int n, int width) {
    std::string out;
    for (int i = 0; i < n; ++i)
        out += std::string(std::size_t(width - 1), char('a' + i % 26)) + "\n";
    return out;
}

std::string slurp(const std::string &p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST(FileSink, RotatesInsideABatchAtLineBoundaries) {
    Dir d;
    auto sink = make_file_sink({d.path + "/o", 1000, 10});
    std::string data = lines(25, 100); // 2500 bytes: 3 files of whole lines
    auto r = sink->write(data);
    EXPECT_EQ(r.status, WriteStatus::ok);
    EXPECT_EQ(r.bytes, data.size());
    EXPECT_EQ(fs::file_size(d.path + "/o.2"), 1000u);
    EXPECT_EQ(fs::file_size(d.path + "/o.1"), 1000u);
    EXPECT_EQ(fs::file_size(d.path + "/o"), 500u);
    EXPECT_EQ(slurp(d.path + "/o.2") + slurp(d.path + "/o.1") + slurp(d.path + "/o"), data);
}

TEST(FileSink, KeepsOnlyRotateKeepFiles) {
    Dir d;
    auto sink = make_file_sink({d.path + "/o", 100, 2});
    for (int i = 0; i < 10; ++i)
        sink->write(lines(1, 100));
    EXPECT_TRUE(fs::exists(d.path + "/o.1"));
    EXPECT_TRUE(fs::exists(d.path + "/o.2"));
    EXPECT_FALSE(fs::exists(d.path + "/o.3"));
}

TEST(FileSink, ALineLongerThanTheLimitGoesAloneIntoAFreshFile) {
    Dir d;
    auto sink = make_file_sink({d.path + "/o", 100, 5});
    sink->write(lines(1, 50));
    sink->write(lines(1, 300));
    sink->write(lines(1, 50));
    EXPECT_EQ(fs::file_size(d.path + "/o.2"), 50u);
    EXPECT_EQ(fs::file_size(d.path + "/o.1"), 300u);
    EXPECT_EQ(fs::file_size(d.path + "/o"), 50u);
}

TEST(FileSink, CreatesMode0640AndAppends) {
    Dir d;
    const std::string p = d.path + "/o";
    {
        std::ofstream(p) << "existing\n";
        chmod(p.c_str(), 0600);
    }
    auto sink = make_file_sink({p, 0, 5});
    sink->write("new\n");
    EXPECT_EQ(slurp(p), "existing\nnew\n");
    fs::remove(p);
    sink->reopen();
    sink->write("after\n");
    struct stat st {};
    ASSERT_EQ(stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    EXPECT_EQ(slurp(p), "after\n");
}

TEST(FileSink, UnwritablePathIsAUsageError) {
    EXPECT_THROW(make_file_sink({"/proc/version/nope", 0, 5}), UsageError);
}
