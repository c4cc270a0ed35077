// Privileged: the file sink (mode, rotation, SIGHUP reopen), a closed stdout
// pipe, and a full disk.
#include <filesystem>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.hpp"

using namespace rwtest;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rwtest-out-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() {
        umount2(path.c_str(), MNT_DETACH);
        fs::remove_all(path);
    }
};

std::size_t count_event(const std::vector<std::string> &lines, const std::string &event) {
    std::size_t n = 0;
    for (auto &l : lines) {
        json j = json::parse(l, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
        if (!j.is_discarded() && j["event"] == event) ++n;
    }
    return n;
}

json last_summary(const std::vector<std::string> &lines) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
        json j = json::parse(*it, nullptr, false);
        if (j.is_object() && j["event"] == "session_summary") return j;
    }
    return {};
}

} // namespace

TEST(Output, FileIsCreated0640AndRotatesBySize) {
    RW_REQUIRE_BPF();
    TempDir dir;
    const std::string out = dir.path + "/events.ndjson";
    const int port = free_port();
    Child rw({rstwatch_bin(), "trace", "--events", "reset", "--port", std::to_string(port),
              "--output", out, "--rotate-size", "8K", "--rotate-keep", "50"});
    ASSERT_TRUE(wait_for_line(out, "session_start")) << rw.stderr_text();
    struct stat st {};
    ASSERT_EQ(stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);

    refused_burst(port, 100); // ~200 lines of ~800 bytes: about 20 rotations
    sleep(1);
    rw.signal(SIGINT);
    EXPECT_EQ(rw.wait(), 0) << rw.stderr_text();

    std::vector<std::string> all;
    std::size_t files = 0;
    for (int i = 50; i >= 1; --i) {
        std::string p = out + "." + std::to_string(i);
        if (!fs::exists(p)) continue;
        ++files;
        auto lines = file_lines(p);
        EXPECT_LE(fs::file_size(p), 8192u) << p;
        all.insert(all.end(), lines.begin(), lines.end());
    }
    auto current = file_lines(out);
    all.insert(all.end(), current.begin(), current.end());
    EXPECT_GE(files, 10u);
    EXPECT_FALSE(fs::exists(out + ".51"));
    // Every line is whole JSON and every reset made it to some file.
    json sum = last_summary(all);
    ASSERT_TRUE(sum.is_object());
    EXPECT_EQ(count_event(all, "tcp_reset"), sum["emitted"].get<std::size_t>());
    EXPECT_EQ(sum["emitted"], 200);
    EXPECT_EQ(sum["write_dropped"], 0);
}

TEST(Output, RotateKeepBoundsTheNumberOfFiles) {
    RW_REQUIRE_BPF();
    TempDir dir;
    const std::string out = dir.path + "/e.ndjson";
    const int port = free_port();
    Child rw({rstwatch_bin(), "trace", "--events", "reset", "--port", std::to_string(port),
              "--output", out, "--rotate-size", "4K", "--rotate-keep", "2"});
    ASSERT_TRUE(wait_for_line(out, "session_start"));
    refused_burst(port, 50);
    rw.signal(SIGINT);
    EXPECT_EQ(rw.wait(), 0);
    EXPECT_TRUE(fs::exists(out + ".1"));
    EXPECT_TRUE(fs::exists(out + ".2"));
    EXPECT_FALSE(fs::exists(out + ".3"));
}

TEST(Output, SighupReopensTheFileAfterARename) {
    RW_REQUIRE_BPF();
    TempDir dir;
    const std::string out = dir.path + "/e.ndjson";
    const int port = free_port();
    Child rw({rstwatch_bin(), "trace", "--events", "reset", "--port", std::to_string(port),
              "--output", out});
    ASSERT_TRUE(wait_for_line(out, "session_start"));
    refused_burst(port, 5);
    ASSERT_TRUE(wait_for_line(out, "tcp_reset"));
    sleep(1);
    // logrotate's "create" mode: rename, then signal.
    fs::rename(out, out + ".old");
    rw.signal(SIGHUP);
    usleep(300000);
    refused_burst(port, 7);
    sleep(1);
    rw.signal(SIGINT);
    EXPECT_EQ(rw.wait(), 0) << rw.stderr_text();
    auto before = file_lines(out + ".old");
    auto after = file_lines(out);
    EXPECT_EQ(count_event(before, "tcp_reset"), 10u);
    EXPECT_EQ(count_event(after, "tcp_reset"), 14u);
    json sum = last_summary(after);
    ASSERT_TRUE(sum.is_object());
    EXPECT_EQ(sum["emitted"], 24);
    struct stat st {};
    ASSERT_EQ(stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(Output, ClosedStdoutEndsTheSessionQuietlyWithExitZero) {
    RW_REQUIRE_BPF();
    const int port = free_port();
    Child rw({rstwatch_bin(), "trace", "--events", "reset", "--port", std::to_string(port)});
    ASSERT_TRUE(rw.read_line(15s).has_value()); // session_start
    rw.close_stdout();                          // like `| head -1` exiting
    refused_burst(port, 3);
    EXPECT_EQ(rw.wait(15s), 0);
    EXPECT_EQ(rw.stderr_text(), "");
}

TEST(Output, FullDiskDropsCountsReportsOnceAndResumes) {
    RW_REQUIRE_BPF();
    TempDir dir;
    ASSERT_EQ(mount("tmpfs", dir.path.c_str(), "tmpfs", 0, "size=64k"), 0) << strerror(errno);
    const std::string out = dir.path + "/e.ndjson";
    const std::string filler = dir.path + "/filler";
    const int port = free_port();
    Child rw({rstwatch_bin(), "trace", "--events", "reset", "--port", std::to_string(port),
              "--output", out});
    ASSERT_TRUE(wait_for_line(out, "session_start"));
    // Fill the file system to the last byte.
    sh("dd if=/dev/zero of=" + filler + " bs=4k 2>/dev/null; true");
    refused_burst(port, 20);
    sleep(2);
    // Space returns: writing resumes.
    fs::remove(filler);
    refused_burst(port, 10);
    sleep(1);
    rw.signal(SIGINT);
    EXPECT_EQ(rw.wait(), 0) << rw.stderr_text();

    std::string err = rw.stderr_text();
    std::size_t reports = 0;
    for (std::size_t p = err.find("dropping events"); p != std::string::npos;
         p = err.find("dropping events", p + 1))
        ++reports;
    EXPECT_EQ(reports, 1u) << err;
    EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;

    auto lines = file_lines(out);
    json sum = last_summary(lines);
    ASSERT_TRUE(sum.is_object()) << "the summary must be written once space returned";
    const std::uint64_t dropped = sum["write_dropped"];
    const std::uint64_t emitted = sum["emitted"];
    EXPECT_GT(dropped, 0u);
    EXPECT_EQ(emitted + dropped, 60u); // 30 connects, 2 resets each
    EXPECT_EQ(count_event(lines, "tcp_reset"), emitted);
}
