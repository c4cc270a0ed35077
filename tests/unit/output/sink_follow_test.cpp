// The file sink follows its path to a file that replaced the open one
// (logrotate create mode), without waiting for SIGHUP and without creating it.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

#include "output/sink.hpp"

using namespace rstwatch;
namespace fs = std::filesystem;

namespace {

struct Dir {
    std::string path;
    Dir() {
        char t[] = "/tmp/rw-follow-XXXXXX";
        path = mkdtemp(t);
    }
    ~Dir() { fs::remove_all(path); }
};

std::string slurp(const std::string &p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST(FileSinkFollow, WritesGoToTheNewFileOnceTheRotatorCreatedIt) {
    Dir d;
    const std::string p = d.path + "/e.ndjson";
    auto sink = make_file_sink({p, 0, 5});
    sink->write("a\n");
    fs::rename(p, p + ".1");
    sink->write("b\n"); // no new file yet: the renamed one still takes it
    EXPECT_FALSE(fs::exists(p))
        << "the sink must not create it (logrotate moves such a file aside)";
    std::ofstream(p).close(); // logrotate `create`
    sink->write("c\n");       // before any SIGHUP
    EXPECT_EQ(slurp(p + ".1"), "a\nb\n");
    EXPECT_EQ(slurp(p), "c\n");
    sink->reopen(); // the SIGHUP that follows changes nothing
    sink->write("d\n");
    EXPECT_EQ(slurp(p), "c\nd\n");
}

TEST(FileSinkFollow, SizeRotationStillCountsTheNewFile) {
    Dir d;
    const std::string p = d.path + "/e.ndjson";
    auto sink = make_file_sink({p, 4, 5});
    sink->write("1234\n"); // longer than the limit: alone in a file
    fs::rename(p, p + ".x");
    std::ofstream(p) << "zz\n"; // a replacement with content: its size counts
    sink->write("y\n");         // 3 + 2 bytes exceed 4: the replacement is rotated first
    EXPECT_EQ(slurp(p + ".x"), "1234\n");
    EXPECT_EQ(slurp(p + ".1"), "zz\n");
    EXPECT_EQ(slurp(p), "y\n");
}
