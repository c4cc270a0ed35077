// Privileged: the boot's cached minimal kernel BTF (userspace/bpf/core_btf).
// The first start writes it, later starts relocate against it, and every
// CO-RE relocation comes out exactly as against the full kernel BTF.
#include <algorithm>
#include <regex>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.hpp"
#include "scoped_env.hpp"

using namespace rwtest;

namespace {

struct TraceRun {
    std::string log;                    // stderr of `rstwatch -v trace`
    std::multiset<std::string> patches; // libbpf's "prog 'x': relo #n: patched insn ..." lines
    bool used_cache = false;
};

// A short `rstwatch -v COMMAND` with RSTWATCH_CACHE_DIR=cache_dir; `object`
// names the BPF object whose cached file it may use.
TraceRun run_once(const std::string &cache_dir, const std::string &command,
                  const std::string &object) {
    TraceRun r;
    r.log =
        sh("RSTWATCH_CACHE_DIR='" + cache_dir + "' " + rstwatch_bin() + " -v " + command + " 2>&1");
    static const std::regex patch(
        R"(prog '[a-z_]+': relo #[0-9]+: (patched insn|poison|substitut).*)");
    std::istringstream in(r.log);
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
        if (std::regex_search(line, m, patch)) r.patches.insert(m.str());
        if (line.find("CO-RE relocation against " + cache_dir + "/core-btf/" + object + "-" +
                      std::to_string(geteuid()) + "-") != std::string::npos)
            r.used_cache = true;
    }
    return r;
}

TraceRun trace_once(const std::string &cache_dir, const std::string &extra = "") {
    return run_once(cache_dir, "trace --duration 300ms --output /dev/null " + extra, "trace");
}

std::vector<std::string> cached_files(const std::string &dir) {
    std::vector<std::string> out;
    std::istringstream in(sh("ls " + dir + "/core-btf 2>/dev/null"));
    std::string f;
    while (in >> f)
        out.push_back(dir + "/core-btf/" + f);
    return out;
}

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/rw_core_btf_XXXXXX";
        path_ = mkdtemp(tmpl) ? tmpl : "";
    }
    ~TempDir() {
        if (!path_.empty()) sh("rm -rf '" + path_ + "'");
    }
    const std::string &path() const { return path_; }

  private:
    std::string path_;
};

// One `trace` into an empty cache directory, and the files it left there
// (one, the trace object's, when the cache works).
std::vector<std::string> cache_written_by_a_first_start(const TempDir &dir) {
    if (dir.path().empty()) return {};
    trace_once(dir.path());
    return cached_files(dir.path());
}

} // namespace

TEST(CoreBtfCache, SecondStartRelocatesAgainstTheCachedFileWithTheSameResults) {
    RW_REQUIRE_BPF();
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());

    const TraceRun full = trace_once("off");
    EXPECT_FALSE(full.used_cache);
    ASSERT_GT(full.patches.size(), 100u) << full.log.substr(0, 2000);

    const TraceRun first = trace_once(dir.path());
    EXPECT_FALSE(first.used_cache) << "nothing was cached yet";
    const auto files = cached_files(dir.path());
    ASSERT_EQ(files.size(), 1u) << first.log.substr(
        first.log.size() > 2000 ? first.log.size() - 2000 : 0);
    struct stat st {};
    ASSERT_EQ(stat(files[0].c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_LT(st.st_size, 1 << 20) << "a minimal BTF, not the kernel's 5 MB";
    ASSERT_EQ(stat((dir.path() + "/core-btf").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);

    const TraceRun second = trace_once(dir.path());
    EXPECT_TRUE(second.used_cache) << second.log.substr(0, 2000);
    EXPECT_EQ(second.patches, full.patches) << "every relocation as against the full kernel BTF";

    // The syscall setsockopt programs (--events keepalive) relocate the same
    // types through other fields.
    const TraceRun ka_full = trace_once("off", "--events keepalive,reset");
    const TraceRun ka_cached = trace_once(dir.path(), "--events keepalive,reset");
    EXPECT_TRUE(ka_cached.used_cache);
    ASSERT_GT(ka_full.patches.size(), full.patches.size());
    EXPECT_EQ(ka_cached.patches, ka_full.patches);
}

TEST(CoreBtfCache, AFileOthersCanWriteIsNotTrusted) {
    RW_REQUIRE_BPF();
    TempDir dir;
    const std::vector<std::string> files = cache_written_by_a_first_start(dir);
    ASSERT_EQ(files.size(), 1u);
    ASSERT_EQ(chmod(files[0].c_str(), 0666), 0);
    EXPECT_FALSE(trace_once(dir.path()).used_cache)
        << "a world-writable file would steer relocations";
    // ... and the session replaced it with a private one.
    struct stat st {};
    ASSERT_EQ(stat(files[0].c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_TRUE(trace_once(dir.path()).used_cache);
}

TEST(CoreBtfCache, ABrokenCachedFileFallsBackToTheFullBtfAndIsRemoved) {
    RW_REQUIRE_BPF();
    TempDir dir;
    const std::vector<std::string> files = cache_written_by_a_first_start(dir);
    ASSERT_EQ(files.size(), 1u);
    ASSERT_EQ(truncate(files[0].c_str(), 100), 0); // trusted (0600, ours) but not BTF any more

    const TraceRun broken = trace_once(dir.path());
    EXPECT_TRUE(broken.used_cache);
    EXPECT_NE(
        broken.log.find("loading against the cached minimal kernel BTF " + files[0] + " failed"),
        std::string::npos)
        << broken.log.substr(broken.log.size() > 3000 ? broken.log.size() - 3000 : 0);
    EXPECT_NE(broken.log.find("trace BPF programs attached"), std::string::npos)
        << "the start went on against the full kernel BTF";
    EXPECT_GT(broken.patches.size(), 100u);
    EXPECT_TRUE(cached_files(dir.path()).empty()) << "removed, and not rewritten by that run";

    trace_once(dir.path()); // writes a good one again
    EXPECT_TRUE(trace_once(dir.path()).used_cache);
}

TEST(CoreBtfCache, ResetsAreTracedWithTheCachedBtf) {
    RW_REQUIRE_BPF();
    TempDir dir;
    const std::vector<std::string> files = cache_written_by_a_first_start(dir);
    ASSERT_EQ(files.size(), 1u);
    struct stat before {};
    ASSERT_EQ(stat(files[0].c_str(), &before), 0);
    ScopedEnv env("RSTWATCH_CACHE_DIR", dir.path());

    const int sport = free_port();
    Session s({"--events", "reset", "--port", std::to_string(sport)});
    Child server({peer_bin(), "server", "--port", std::to_string(sport), "--abort-after-ms", "500",
                  "--name", "rw_btf_srv"});
    server.expect("listening");
    Child client({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms", "4000",
                  "--name", "rw_btf_cli"});
    const int cport = int(field(client.expect("connected"), 0));
    EXPECT_EQ(client.expect("result"), "errno 104"); // ECONNRESET
    client.wait();
    server.wait();
    auto events = s.stop();
    // Used, not rewritten: a file the session did not trust would have been
    // replaced (a new inode) once tracing ran.
    struct stat after {};
    ASSERT_EQ(stat(files[0].c_str(), &after), 0);
    EXPECT_EQ(after.st_ino, before.st_ino);

    std::vector<json> rst;
    for (auto &e : of_type(events, "tcp_reset"))
        if (e["local"]["port"] == sport || e["local"]["port"] == cport) rst.push_back(e);
    ASSERT_EQ(rst.size(), 2u) << json(rst).dump(2);
    for (auto &e : rst) {
        const bool sent = e["direction"] == "sent";
        EXPECT_EQ(e["local"]["port"], sent ? sport : cport) << e.dump(2);
        EXPECT_EQ(e["remote"]["port"], sent ? cport : sport) << e.dump(2);
        EXPECT_EQ(e["process"]["comm"], sent ? "rw_btf_srv" : "rw_btf_cli") << e.dump(2);
        EXPECT_EQ(e["process"]["pid"], sent ? server.pid() : client.pid()) << e.dump(2);
        // The aborting socket is already closed when its reset goes out.
        EXPECT_EQ(e["state"], sent ? "CLOSE" : "ESTABLISHED") << e.dump(2);
        if (sent) EXPECT_EQ(e["verdict"], "local_abort") << e.dump(2);
    }
}

TEST(CoreBtfCache, EnforceCachesItsOwnObjectWithTheSameRelocations) {
    RW_REQUIRE_BPF();
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    TestCgroup cg("core_btf");
    const std::string cmd =
        "enforce --cgroup " + cg.relative() + " --idle 30s --existing --duration 300ms";

    const TraceRun full = run_once("off", cmd, "enforce");
    ASSERT_GT(full.patches.size(), 20u) << full.log.substr(0, 2000);
    const TraceRun first = run_once(dir.path(), cmd, "enforce");
    EXPECT_FALSE(first.used_cache);
    const auto files = cached_files(dir.path());
    ASSERT_EQ(files.size(), 1u) << first.log.substr(
        first.log.size() > 2000 ? first.log.size() - 2000 : 0);
    EXPECT_NE(files[0].find("/core-btf/enforce-"), std::string::npos) << files[0];
    const TraceRun second = run_once(dir.path(), cmd, "enforce");
    EXPECT_TRUE(second.used_cache) << second.log.substr(0, 2000);
    EXPECT_EQ(second.patches, full.patches);
}
