// Privileged: clients nobody here wrote, through the lab firewall (conntrack
// established timeout 3 s, reject mode), idle 5 s, then used: psql against a
// real PostgreSQL server, OpenSSH ssh against sshd, and a statically linked Go
// client. Each death is checked in `rstwatch trace`'s tcp_reset event: the
// owner (pid and comm of the client we started), its keepalive state as the
// kernel applies it, and the verdict. A tool that is not installed skips its
// test with the reason (scripts/install-deps.sh test installs them all).
#include <csignal>
#include <cstring>
#include <elf.h>
#include <filesystem>
#include <fstream>
#include <glob.h>
#include <pwd.h>
#include <thread>
#include <unistd.h>

#include "harness.hpp"
#include "lab_support.hpp"

using namespace rwtest;
namespace fs = std::filesystem;

namespace {

constexpr int kCtTimeoutS = 3;
constexpr auto kIdle = 5s;

// A client that already died must fail the test, not kill it with SIGPIPE
// when we write to its stdin.
#define RW_REQUIRE_REAL_CLIENT_LAB()                                                               \
    do {                                                                                           \
        RW_REQUIRE_BPF_LAB();                                                                      \
        std::signal(SIGPIPE, SIG_IGN);                                                             \
    } while (0)

// First existing executable among `paths` (globs allowed), or empty.
std::string find_tool(std::initializer_list<const char *> paths) {
    for (const char *p : paths) {
        glob_t g{};
        if (glob(p, 0, nullptr, &g) == 0)
            for (std::size_t i = g.gl_pathc; i-- > 0;) // the newest version sorts last
                if (access(g.gl_pathv[i], X_OK) == 0) {
                    std::string found = g.gl_pathv[i];
                    globfree(&g);
                    return found;
                }
        globfree(&g);
    }
    return {};
}

// A temp directory removed with the object.
struct TempDir {
    std::string path;
    explicit TempDir(const std::string &tag) {
        std::string tmpl = "/tmp/rw-" + tag + "-XXXXXX";
        path = mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// Waits until a child's stderr contains `needle`.
bool stderr_has(Child &c, const std::string &needle, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (c.stderr_text().find(needle) != std::string::npos) return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

Session trace_client_ns(const LabNet &lab) {
    return trace_client_netns(lab, {"--middlebox-timeout", std::to_string(kCtTimeoutS) + "s"});
}

// The one reset the client received, with the owner it must name.
json the_reset(const std::vector<json> &events, pid_t pid, const std::string &comm) {
    auto rst = owned_by(events, "tcp_reset", pid);
    EXPECT_EQ(rst.size(), 1u) << json(events).dump(2);
    if (rst.empty()) return json::object();
    const json &r = rst[0];
    EXPECT_EQ(r["direction"], "received");
    EXPECT_EQ(r["process"]["comm"], comm);
    EXPECT_EQ(r["state"], "ESTABLISHED");
    EXPECT_GE(r["idle_ms"].get<int>(), kCtTimeoutS * 1000) << r.dump(2);
    EXPECT_EQ(r["origin"], "middlebox") << r.dump(2);
    return r;
}

// ---- PostgreSQL ----

struct Postgres {
    TempDir dir{"pg"};
    std::unique_ptr<Child> server;
    std::string port = "5432";
    bool ok = false;
    std::string bin;
    Postgres(const LabNet &lab, const std::string &bin_dir) : bin(bin_dir) {
        passwd *pw = getpwnam("postgres");
        if (!pw) {
            ADD_FAILURE() << "no postgres user although the postgresql package is installed";
            return;
        }
        const std::string data = dir.path + "/data";
        EXPECT_EQ(chown(dir.path.c_str(), pw->pw_uid, pw->pw_gid), 0);
        sh("runuser -u postgres -- " + bin_dir + "/initdb -D " + data +
           " -A trust -U postgres --locale=C -E UTF8 >/dev/null 2>&1");
        // initdb trusts only local connections; the client is in another namespace.
        std::ofstream(data + "/pg_hba.conf", std::ios::app) << "host all all 0.0.0.0/0 trust\n";
        server = std::make_unique<Child>(lab.in(
            "SERVER_NS", {"/usr/sbin/runuser", "-u", "postgres", "--", bin_dir + "/postgres", "-D",
                          data, "-h", lab["SERVER_ADDR"], "-p", port, "-k", dir.path}));
        ok = stderr_has(*server, "ready to accept connections", 30s);
        EXPECT_TRUE(ok) << server->stderr_text();
    }
    ~Postgres() {
        if (!server) return;
        // runuser does not pass SIGINT on: stop the postmaster by its pid file.
        sh("runuser -u postgres -- " + bin + "/pg_ctl stop -m fast -w -D " + dir.path +
           "/data >/dev/null 2>&1 || true");
        server->wait(20s);
    }
};

std::string postgres_bin_dir() {
    std::string initdb = find_tool({"/usr/lib/postgresql/*/bin/initdb"});
    return initdb.empty() ? "" : fs::path(initdb).parent_path().string();
}

std::string psql_unavailable_reason() {
    if (postgres_bin_dir().empty() || find_tool({"/usr/bin/psql"}).empty())
        return "PostgreSQL not installed (Debian package postgresql; scripts/install-deps.sh test)";
    return {};
}

struct PsqlRun {
    pid_t pid = 0;
    std::string after; // what the query after the idle period printed
    int rc = -1;
    std::string err;
};

// psql connects, answers one query, idles past the firewall's timeout, then
// sends a second query.
PsqlRun run_psql(const LabNet &lab, const Postgres &pg, const std::string &extra_conninfo) {
    const std::string psql = find_tool({"/usr/bin/psql"});
    const std::string conninfo = "host=" + lab["SERVER_ADDR"] + " port=" + pg.port +
                                 " user=postgres dbname=postgres sslmode=disable "
                                 "gssencmode=disable " +
                                 extra_conninfo;
    Child c(lab.in("CLIENT_NS", {psql, "-X", "-At", conninfo}), /*pipe_stdin=*/true);
    PsqlRun r;
    r.pid = c.pid();
    c.write_stdin("SELECT 'ready';\n");
    auto first = c.read_line(20s);
    EXPECT_EQ(first.value_or(""), "ready") << c.stderr_text();
    std::this_thread::sleep_for(kIdle);
    c.write_stdin("SELECT 'after';\n");
    r.after = c.read_line(10s).value_or("");
    c.write_stdin("\\q\n");
    r.rc = c.wait(20s);
    r.err = c.stderr_text();
    return r;
}

struct PsqlTraced {
    PsqlRun run;
    std::vector<json> events; // what `rstwatch trace` saw meanwhile
};

// A PostgreSQL server behind the lab firewall and psql (run_psql) in front of
// it, traced. Call with ASSERT_NO_FATAL_FAILURE.
void trace_psql(const std::string &extra_conninfo, PsqlTraced &out) {
    LabNet lab("rwrc", "reject", kCtTimeoutS);
    ASSERT_TRUE(lab.up());
    Postgres pg(lab, postgres_bin_dir());
    ASSERT_TRUE(pg.ok);
    Session s = trace_client_ns(lab);
    out.run = run_psql(lab, pg, extra_conninfo);
    out.events = s.stop();
}

} // namespace

// libpq turns SO_KEEPALIVE on and leaves the idle time to the sysctl (7200 s):
// keepalive on, far too slow for a 3 s firewall.
TEST(RealClients, PsqlSysctlKeepaliveIsTooSlow) {
    RW_REQUIRE_REAL_CLIENT_LAB();
    if (auto why = psql_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    PsqlTraced t;
    ASSERT_NO_FATAL_FAILURE(trace_psql("", t));
    const PsqlRun &r = t.run;
    const auto &events = t.events;
    EXPECT_NE(r.after, "after") << "the query after the idle period went through";
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.err.find("connection to server was lost"), std::string::npos) << r.err;
    json rst = the_reset(events, r.pid, "psql");
    ASSERT_TRUE(rst.contains("keepalive"));
    EXPECT_EQ(rst["keepalive"]["enabled"], true);
    EXPECT_EQ(rst["keepalive"]["idle_s"], 7200);
    EXPECT_EQ(rst["keepalive"]["source"], "sysctl");
    EXPECT_EQ(rst["verdict"], "keepalive_too_slow") << rst.dump(2);
}

// The documented libpq fix: keepalives_idle below the firewall's timeout.
TEST(RealClients, PsqlWithKeepalivesIdleOneSurvives) {
    RW_REQUIRE_REAL_CLIENT_LAB();
    if (auto why = psql_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    PsqlTraced t;
    ASSERT_NO_FATAL_FAILURE(trace_psql("keepalives_idle=1 keepalives_interval=1", t));
    const PsqlRun &r = t.run;
    const auto &events = t.events;
    EXPECT_EQ(r.after, "after") << r.err;
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_TRUE(owned_by(events, "tcp_reset", r.pid).empty()) << json(events).dump(2);
    EXPECT_TRUE(owned_by(events, "tcp_timeout", r.pid).empty()) << json(events).dump(2);
}

// ---- OpenSSH ----

TEST(RealClients, SshTcpKeepAliveUsesTheSysctlIdleAndIsTooSlow) {
    RW_REQUIRE_REAL_CLIENT_LAB();
    const std::string sshd = find_tool({"/usr/sbin/sshd"});
    const std::string ssh = find_tool({"/usr/bin/ssh"});
    const std::string keygen = find_tool({"/usr/bin/ssh-keygen"});
    if (sshd.empty() || ssh.empty() || keygen.empty())
        GTEST_SKIP() << "OpenSSH not installed (Debian packages openssh-server, openssh-client; "
                        "scripts/install-deps.sh test)";
    LabNet lab("rwrc", "reject", kCtTimeoutS);
    ASSERT_TRUE(lab.up());
    TempDir dir("ssh");
    const std::string d = dir.path;
    sh(keygen + " -q -t ed25519 -N '' -f " + d + "/host_key");
    sh(keygen + " -q -t ed25519 -N '' -f " + d + "/id");
    sh("cp " + d + "/id.pub " + d + "/authorized_keys");
    const std::string port = "2222";
    {
        std::ofstream cfg(d + "/sshd_config");
        cfg << "Port " << port << "\nListenAddress " << lab["SERVER_ADDR"] << "\nHostKey " << d
            << "/host_key\nPidFile " << d << "/sshd.pid\nAuthorizedKeysFile " << d
            << "/authorized_keys\nStrictModes no\nUsePAM no\nPermitRootLogin yes\n"
               "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
               "TCPKeepAlive yes\nClientAliveInterval 0\n";
    }
    fs::create_directories("/run/sshd"); // its privilege-separation directory
    Child server(lab.in("SERVER_NS", {sshd, "-D", "-e", "-f", d + "/sshd_config"}));
    ASSERT_TRUE(stderr_has(server, "Server listening", 15s)) << server.stderr_text();

    Session s = trace_client_ns(lab);
    Child client(lab.in("CLIENT_NS", {ssh,
                                      "-F",
                                      "/dev/null",
                                      "-i",
                                      d + "/id",
                                      "-o",
                                      "StrictHostKeyChecking=no",
                                      "-o",
                                      "UserKnownHostsFile=/dev/null",
                                      "-o",
                                      "BatchMode=yes",
                                      "-o",
                                      "TCPKeepAlive=yes",
                                      "-o",
                                      "ServerAliveInterval=0",
                                      "-o",
                                      "LogLevel=ERROR",
                                      "-p",
                                      port,
                                      "root@" + lab["SERVER_ADDR"],
                                      "cat"}),
                 /*pipe_stdin=*/true);
    client.write_stdin("hello\n");
    EXPECT_EQ(client.read_line(20s).value_or(""), "hello") << client.stderr_text();
    std::this_thread::sleep_for(kIdle);
    client.write_stdin("again\n");
    const int rc = client.wait(20s);
    auto events = s.stop();
    EXPECT_EQ(rc, 255) << client.stderr_text();
    // The RST ends the connection; ssh's next send then fails (EPIPE) or reads the reset.
    const std::string err = client.stderr_text();
    EXPECT_TRUE(err.find("Broken pipe") != std::string::npos ||
                err.find("reset by peer") != std::string::npos)
        << err;
    json rst = the_reset(events, client.pid(), "ssh");
    ASSERT_TRUE(rst.contains("keepalive"));
    EXPECT_EQ(rst["keepalive"]["enabled"], true);
    EXPECT_EQ(rst["keepalive"]["idle_s"], 7200);
    EXPECT_EQ(rst["keepalive"]["source"], "sysctl");
    EXPECT_EQ(rst["verdict"], "keepalive_too_slow") << rst.dump(2);
    server.signal(SIGTERM);
    server.wait(10s);
}

// ---- a static Go client ----

namespace {

std::string gocli_unavailable_reason() {
    const std::string bin = RW_GOCLI_BIN;
    if (bin.empty())
        return "no Go toolchain at configure time (Debian package golang-go; "
               "scripts/install-deps.sh test, then re-run cmake)";
    if (access(bin.c_str(), X_OK) != 0) return bin + " was not built";
    return {};
}

// No PT_INTERP program header: no dynamic loader, so no LD_PRELOAD either.
bool is_static_elf(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    Elf64_Ehdr eh{};
    if (!f.read(reinterpret_cast<char *>(&eh), sizeof eh)) return false;
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
        return false;
    for (int i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        f.seekg(std::streamoff(eh.e_phoff + std::uint64_t(i) * eh.e_phentsize));
        if (!f.read(reinterpret_cast<char *>(&ph), sizeof ph)) return false;
        if (ph.p_type == PT_INTERP) return false;
    }
    return true;
}

struct GoRun {
    pid_t pid = 0;
    std::string result;
    std::vector<json> events;
};

GoRun run_gocli(const std::vector<std::string> &opts) {
    LabNet lab("rwrc", "reject", kCtTimeoutS);
    GoRun g;
    if (!lab.up()) return g;
    Child server(lab.in("SERVER_NS", {std::string(RW_HELPER_DIR) + "/rw_idle_server", "--addr",
                                      lab["SERVER_ADDR"], "--duration-ms", "30000"}));
    const std::string port = server.expect("listening");
    Session s = trace_client_ns(lab);
    std::vector<std::string> argv{RW_GOCLI_BIN, "-addr", lab["SERVER_ADDR"] + ":" + port, "-idle",
                                  "5s"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    Child c(lab.in("CLIENT_NS", argv));
    g.pid = c.pid();
    c.expect("connected", 15s);
    g.result = c.expect("result", 20s);
    c.wait(10s);
    g.events = s.stop();
    return g;
}

} // namespace

// Go's default dialer: keepalive on with TCP_KEEPIDLE 15 s set on the socket.
TEST(RealClients, StaticGoDefaultDialerKeepaliveIsTooSlow) {
    RW_REQUIRE_REAL_CLIENT_LAB();
    if (auto why = gocli_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(is_static_elf(RW_GOCLI_BIN)) << RW_GOCLI_BIN << " is not statically linked";
    GoRun g = run_gocli({});
    EXPECT_EQ(g.result, "ECONNRESET");
    json rst = the_reset(g.events, g.pid, "gocli");
    ASSERT_TRUE(rst.contains("keepalive"));
    EXPECT_EQ(rst["keepalive"]["enabled"], true);
    EXPECT_EQ(rst["keepalive"]["idle_s"], 15);
    EXPECT_EQ(rst["keepalive"]["source"], "socket");
    EXPECT_EQ(rst["verdict"], "keepalive_too_slow") << rst.dump(2);
}

TEST(RealClients, StaticGoKeepAliveMinusOneIsDisabled) {
    RW_REQUIRE_REAL_CLIENT_LAB();
    if (auto why = gocli_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    GoRun g = run_gocli({"-keepalive", "-1s"});
    EXPECT_EQ(g.result, "ECONNRESET");
    json rst = the_reset(g.events, g.pid, "gocli");
    ASSERT_TRUE(rst.contains("keepalive"));
    EXPECT_EQ(rst["keepalive"]["enabled"], false);
    EXPECT_EQ(rst["verdict"], "keepalive_disabled") << rst.dump(2);
}

// The remedy for the binary LD_PRELOAD tools cannot reach: a static Go client
// with keepalive off, connected before enforcement started, is given keepalive
// by `rstwatch enforce --existing` and survives an idle period twice the
// firewall's timeout.
TEST(RealClients, StaticGoWithoutKeepaliveIsRescuedByEnforceExisting) {
    RW_REQUIRE_REAL_CLIENT_LAB();
    if (auto why = gocli_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    LabNet lab("rwrx", "reject", kCtTimeoutS);
    ASSERT_TRUE(lab.up());
    TestCgroup cg("rc-go");
    Child server(lab.in("SERVER_NS", {std::string(RW_HELPER_DIR) + "/rw_idle_server", "--addr",
                                      lab["SERVER_ADDR"], "--duration-ms", "30000"}));
    const std::string port = server.expect("listening");
    Child c(cg.wrap(lab.in("CLIENT_NS", {RW_GOCLI_BIN, "-addr", lab["SERVER_ADDR"] + ":" + port,
                                         "-keepalive", "-1s", "-idle", "7s"})));
    const int cport = std::stoi(c.expect("connected", 15s));

    Child enf({rstwatch_bin(), "enforce", "--cgroup", cg.relative(), "--idle", "1s", "--interval",
               "1s", "--existing"});
    auto first = enf.read_line(20s);
    ASSERT_TRUE(first) << enf.stderr_text();
    json start = json::parse(*first);
    EXPECT_EQ(start["event"], "enforce_start");
    EXPECT_EQ(start["existing"]["connections"], 1) << start.dump();

    EXPECT_EQ(c.expect("result", 20s), "OK") << "the connection died despite enforcement";
    c.wait(10s);
    enf.signal(SIGINT);
    std::vector<json> events;
    for (auto &l : enf.read_all(20s))
        events.push_back(json::parse(l));
    EXPECT_EQ(enf.wait(20s), 0) << enf.stderr_text();
    int rescued = 0;
    for (auto &e : of_type(events, "keepalive_enforced"))
        if (e["local"].is_object() && e["local"]["port"] == cport) {
            ++rescued;
            EXPECT_EQ(e["trigger"], "existing");
            EXPECT_EQ(e["process"]["pid"], c.pid());
            EXPECT_EQ(e["process"]["comm"], "gocli");
            EXPECT_EQ(e["previous"]["enabled"], false);
            EXPECT_EQ(e["applied"]["enabled"], true);
            EXPECT_EQ(e["applied"]["idle_s"], 1);
        }
    EXPECT_EQ(rescued, 1) << json(events).dump(2);
}
