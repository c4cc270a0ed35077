// Privileged: `rstwatch enforce` attaches real programs to a test cgroup and
// the kernel changes real sockets; every value is checked with getsockopt
// inside the application (rw_ka_probe) and in the keepalive_enforced events.
//
// The middlebox-lab scenario (an unmodified client inside an enforced cgroup
// survives the firewall's idle timeout) is in lab_test.cpp, next to the lab.
#include <atomic>
#include <csignal>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.hpp"
#include "scoped_env.hpp"
#include "enforce/enforce.hpp"
#include "util/cgroup_fs.hpp"

using namespace rwtest;

namespace {

std::string probe_bin() {
    return RW_KA_PROBE_BIN;
}

int sysctl_int(const std::string &name) {
    std::ifstream in("/proc/sys/" + name);
    int v = -1;
    in >> v;
    return v;
}

// The host's defaults, which a socket without its own values reports.
struct Defaults {
    int idle = sysctl_int("net/ipv4/tcp_keepalive_time");
    int intvl = sysctl_int("net/ipv4/tcp_keepalive_intvl");
    int cnt = sysctl_int("net/ipv4/tcp_keepalive_probes");
};

std::uint64_t inode_of(const std::string &path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return 0;
    return st.st_ino;
}

// A cgroup under the v2 root, unique to this test process; removed (with any
// process left in it killed) when the test ends, pass or fail.
class EnforcedCgroup {
  public:
    EnforcedCgroup() {
        static std::atomic<int> n{0};
        root_ = rstwatch::cgroup2_mount_point();
        name_ = "rwtest-enforce-" + std::to_string(getpid()) + "-" + std::to_string(n++);
        dir_ = root_ + "/" + name_;
        ok_ = !root_.empty() && mkdir(dir_.c_str(), 0755) == 0;
        error_ = ok_ ? 0 : errno;
        id_ = inode_of(dir_);
    }
    ~EnforcedCgroup() {
        if (!ok_) return;
        // Pins would keep the (dying) cgroup and our programs alive forever.
        try {
            rstwatch::remove_pinned(id_);
        } catch (...) {
        }
        for (int i = 0; i < 100; ++i) {
            std::ifstream procs(dir_ + "/cgroup.procs");
            std::string pid;
            while (std::getline(procs, pid))
                if (!pid.empty()) kill(std::stoi(pid), SIGKILL);
            if (rmdir(dir_.c_str()) == 0 || errno == ENOENT) return;
            usleep(20000);
        }
        ADD_FAILURE() << "could not remove the test cgroup " << dir_;
    }
    bool ok() const { return ok_; }
    int error() const { return error_; } // mkdir's errno when !ok()
    const std::string &dir() const { return dir_; }
    std::string rel() const { return "/" + name_; }
    std::uint64_t id() const { return id_; }

  private:
    std::string root_, name_, dir_;
    std::uint64_t id_ = 0;
    bool ok_ = false;
    int error_ = 0;
};

// argv that joins the cgroup, then execs `argv`: the pid started is the pid of
// the program (a wrapper such as nsenter or `ip netns exec` may follow, since
// the cgroup is joined first, where cgroupfs is visible).
std::vector<std::string> in_cgroup(const EnforcedCgroup &cg, const std::vector<std::string> &argv) {
    std::vector<std::string> out{"/bin/sh", "-c",
                                 "echo $$ > '" + cg.dir() + "/cgroup.procs' && exec \"$0\" \"$@\""};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

// rw_ka_probe started inside the cgroup.
std::unique_ptr<Child> probe_in(const EnforcedCgroup &cg, const std::vector<std::string> &args,
                                bool pipe_stdin = false) {
    std::vector<std::string> argv{probe_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(in_cgroup(cg, argv), pipe_stdin);
}

std::unique_ptr<Child> probe_outside(const std::vector<std::string> &args) {
    std::vector<std::string> argv{probe_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(argv);
}

// What getsockopt said inside the probe.
struct Ka {
    int enabled = -1, idle = -1, intvl = -1, cnt = -1;
    bool operator==(const Ka &o) const {
        return enabled == o.enabled && idle == o.idle && intvl == o.intvl && cnt == o.cnt;
    }
};
std::ostream &operator<<(std::ostream &os, const Ka &k) {
    return os << "{enabled " << k.enabled << ", idle " << k.idle << ", intvl " << k.intvl
              << ", cnt " << k.cnt << "}";
}

Ka ka_of(Child &probe, const std::string &who) {
    std::istringstream in(probe.expect(who));
    Ka k;
    in >> k.enabled >> k.idle >> k.intvl >> k.cnt;
    return k;
}

// A probe's connection: its listening port and its client's local port.
struct Conn {
    int server_port = 0, client_port = 0;
};

Conn connect_probe(Child &probe) {
    Conn c;
    c.server_port = std::stoi(probe.expect("listening"));
    c.client_port = std::stoi(probe.expect("connected"));
    EXPECT_EQ(std::stoi(probe.expect("accepted")), c.client_port);
    return c;
}

// Every line validates against schema/ (the JSON contract).
void expect_valid(const std::vector<json> &lines) {
    std::string path = "/tmp/rwtest-enforce-" + std::to_string(getpid()) + ".ndjson";
    {
        std::ofstream out(path);
        for (auto &l : lines)
            out << l.dump() << "\n";
    }
    std::string out =
        sh("/usr/bin/python3 " RW_SOURCE_DIR "/scripts/validate-events.py " + path + " 2>&1");
    EXPECT_NE(out.find("valid: " + std::to_string(lines.size()) + " line(s)"), std::string::npos)
        << out;
    unlink(path.c_str());
}

// `rstwatch enforce ARGS`, waited for until enforce_start (the programs are
// attached and --existing has been applied).
class EnforceRun {
  public:
    explicit EnforceRun(const std::vector<std::string> &args)
        : child_([&] {
              std::vector<std::string> argv{rstwatch_bin(), "enforce"};
              argv.insert(argv.end(), args.begin(), args.end());
              return argv;
          }()) {
        auto line = child_.read_line(20s);
        if (!line) {
            ADD_FAILURE() << "rstwatch enforce did not start; stderr: " << child_.stderr_text();
            return;
        }
        start_ = json::parse(*line, nullptr, false);
        EXPECT_EQ(start_.value("event", ""), "enforce_start") << *line;
    }
    const json &start() const { return start_; }
    // Events after enforce_start until exit, after sending `sig` (0: it exits by itself).
    std::vector<json> stop(int sig = SIGINT) {
        if (sig) child_.signal(sig);
        std::vector<json> events;
        for (auto &line : child_.read_all(30s)) {
            json j = json::parse(line, nullptr, false);
            EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
            if (!j.is_discarded()) events.push_back(std::move(j));
        }
        int status = child_.wait(30s);
        EXPECT_EQ(status, 0) << "rstwatch enforce exited with " << status
                             << "; stderr: " << child_.stderr_text();
        std::vector<json> all{start_};
        all.insert(all.end(), events.begin(), events.end());
        expect_valid(all);
        return events;
    }

    Child &child() { return child_; }

  private:
    Child child_;
    json start_;
};

// keepalive_enforced events of one connection end (by local port).
std::vector<json> enforced_at(const std::vector<json> &events, int local_port) {
    std::vector<json> out;
    for (auto &e : of_type(events, "keepalive_enforced"))
        if (!e["local"].is_null() && e["local"]["port"] == local_port) out.push_back(e);
    return out;
}

json ka_json(bool enabled, int idle, int intvl, int cnt) {
    return json{{"enabled", enabled}, {"idle_s", idle}, {"interval_s", intvl}, {"probes", cnt}};
}

// Every field of a keepalive_enforced event.
void expect_enforced(const json &e, const std::string &trigger, pid_t pid, const std::string &comm,
                     const std::string &owner_source, const EnforcedCgroup &cg, int local,
                     int remote, const json &previous, const json &applied, bool dry_run,
                     const std::string &addr = "127.0.0.1") {
    EXPECT_EQ(e["v"], 1);
    EXPECT_TRUE(e["ts"].is_string());
    EXPECT_TRUE(e["host"].is_string());
    EXPECT_EQ(e["trigger"], trigger);
    EXPECT_EQ(e["process"]["pid"], pid);
    EXPECT_EQ(e["process"]["comm"], comm);
    EXPECT_EQ(e["process"]["uid"], 0);
    EXPECT_EQ(e["owner_source"], owner_source);
    EXPECT_EQ(e["cgroup_id"], cg.id());
    EXPECT_EQ(e["cgroup"], cg.rel());
    EXPECT_TRUE(e["container_id"].is_null());
    EXPECT_TRUE(e["pod_uid"].is_null());
    EXPECT_EQ(e["family"], addr.find(':') == std::string::npos ? "ipv4" : "ipv6");
    EXPECT_EQ(e["local"], (json{{"addr", addr}, {"port", local}}));
    EXPECT_EQ(e["remote"], (json{{"addr", addr}, {"port", remote}}));
    EXPECT_EQ(e["previous"], previous);
    EXPECT_EQ(e["applied"], applied);
    EXPECT_EQ(e["dry_run"], dry_run);
    EXPECT_TRUE(e["error"].is_null()) << e.dump();
}

// A probe's connection with keepalive set at both ends: the client's when it
// connected, the server's when it was accepted (in softirq, so the owner is the
// process that called listen(): the probe itself). Call with
// ASSERT_NO_FATAL_FAILURE.
void expect_both_ends_enforced(const std::vector<json> &events, const Conn &c, const Child &probe,
                               const std::string &comm, const EnforcedCgroup &cg,
                               const json &previous, const json &applied, bool dry_run) {
    auto active = enforced_at(events, c.client_port);
    ASSERT_EQ(active.size(), 1u) << json(events).dump(2);
    expect_enforced(active[0], "active_open", probe.pid(), comm, "connect", cg, c.client_port,
                    c.server_port, previous, applied, dry_run);
    auto passive = enforced_at(events, c.server_port);
    ASSERT_EQ(passive.size(), 1u) << json(events).dump(2);
    expect_enforced(passive[0], "passive_open", probe.pid(), comm, "listener", cg, c.server_port,
                    c.client_port, previous, applied, dry_run);
}

std::uint64_t own_netns() {
    return inode_of("/proc/self/ns/net");
}

// `bpftool cgroup show` lists every program attached to the cgroup itself.
void expect_no_program_of_ours(const EnforcedCgroup &cg) {
    std::string shown = sh("bpftool cgroup show '" + cg.dir() + "' 2>&1");
    EXPECT_EQ(shown.find("rw_enf"), std::string::npos) << shown;
}

void expect_counts(const json &stop, int active, int passive, int existing, int setsockopt,
                   int kept) {
    EXPECT_EQ(stop["enforced"], (json{{"active_open", active},
                                      {"passive_open", passive},
                                      {"existing", existing},
                                      {"setsockopt", setsockopt}}))
        << stop.dump();
    EXPECT_EQ(stop["kept"], kept) << stop.dump();
    EXPECT_EQ(stop["errors"], 0);
    EXPECT_EQ(stop["lost"], 0);
}

// Every test: BPF can load here, and a cgroup of its own to enforce.
class Enforce : public ::testing::Test {
  protected:
    void SetUp() override {
        RW_REQUIRE_BPF();
        ASSERT_TRUE(cg.ok()) << "cannot create a test cgroup under the cgroup v2 root: "
                             << std::strerror(cg.error());
    }

    EnforcedCgroup cg;
    const Defaults def; // the host's keepalive sysctls
};

} // namespace

TEST_F(Enforce, ClientInCgroupGetsKeepaliveOthersUnchanged) {
    {
        EnforceRun enf(
            {"--cgroup", cg.rel(), "--idle", "30s", "--interval", "5s", "--probes", "3"});
        const json &s = enf.start();
        EXPECT_EQ(s["cgroup"], cg.rel());
        EXPECT_EQ(s["cgroup_id"], cg.id());
        EXPECT_EQ(s["mode"], "unset-only");
        EXPECT_EQ(s["idle_s"], 30);
        EXPECT_EQ(s["interval_s"], 5);
        EXPECT_EQ(s["probes"], 3);
        EXPECT_EQ(s["dry_run"], false);
        EXPECT_EQ(s["programs"], json::array({"sockops"}));
        EXPECT_TRUE(s["existing"].is_null());
        EXPECT_TRUE(s["pinned"].is_null());

        auto in = probe_in(cg, {"--name", "rw_enf_in"});
        Conn c = connect_probe(*in);
        EXPECT_EQ(ka_of(*in, "client"), (Ka{1, 30, 5, 3}));
        EXPECT_EQ(ka_of(*in, "server"), (Ka{1, 30, 5, 3}));
        EXPECT_EQ(in->wait(), 0);

        auto out = probe_outside({"--name", "rw_enf_out"});
        Conn o = connect_probe(*out);
        EXPECT_EQ(ka_of(*out, "client"), (Ka{0, def.idle, def.intvl, def.cnt}));
        EXPECT_EQ(ka_of(*out, "server"), (Ka{0, def.idle, def.intvl, def.cnt}));
        EXPECT_EQ(out->wait(), 0);

        auto events = enf.stop();
        const json before = ka_json(false, def.idle, def.intvl, def.cnt);
        const json after = ka_json(true, 30, 5, 3);
        ASSERT_NO_FATAL_FAILURE(
            expect_both_ends_enforced(events, c, *in, "rw_enf_in", cg, before, after, false));
        EXPECT_EQ(enforced_at(events, c.client_port)[0]["netns"], own_netns());
        EXPECT_TRUE(enforced_at(events, o.client_port).empty());
        EXPECT_TRUE(enforced_at(events, o.server_port).empty());

        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        EXPECT_EQ(stop[0]["end_reason"], "signal");
        EXPECT_EQ(stop[0]["detached"], true);
        EXPECT_TRUE(stop[0]["pinned"].is_null());
        expect_counts(stop[0], 1, 1, 0, 0, 0);
    }
    expect_no_program_of_ours(cg);
}

TEST_F(Enforce, UnsetOnlyKeepsTheApplicationsOwnValues) {
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s"});
        // Keepalive on before connect: left alone.
        auto own = probe_in(cg, {"--name", "rw_enf_own", "--keepalive", "--keepidle", "600",
                                 "--keepintvl", "20", "--keepcnt", "4"});
        Conn a = connect_probe(*own);
        EXPECT_EQ(ka_of(*own, "client"), (Ka{1, 600, 20, 4}));
        EXPECT_EQ(ka_of(*own, "server"), (Ka{1, 30, def.intvl, def.cnt}));
        EXPECT_EQ(own->wait(), 0);
        // TCP_KEEPIDLE set after we enabled keepalive: the application's value wins.
        auto late = probe_in(cg, {"--name", "rw_enf_late", "--late-keepidle", "900"});
        Conn b = connect_probe(*late);
        EXPECT_EQ(late->expect("late_keepidle"), "0");
        EXPECT_EQ(ka_of(*late, "client"), (Ka{1, 900, def.intvl, def.cnt}));
        EXPECT_EQ(late->wait(), 0);

        auto events = enf.stop();
        EXPECT_TRUE(enforced_at(events, a.client_port).empty()) << json(events).dump(2);
        auto passive = enforced_at(events, a.server_port);
        ASSERT_EQ(passive.size(), 1u);
        expect_enforced(passive[0], "passive_open", own->pid(), "rw_enf_own", "listener", cg,
                        a.server_port, a.client_port, ka_json(false, def.idle, def.intvl, def.cnt),
                        ka_json(true, 30, def.intvl, def.cnt), false);
        auto at_connect = enforced_at(events, b.client_port);
        ASSERT_EQ(at_connect.size(), 1u); // the establishment, not the later setsockopt
        EXPECT_EQ(at_connect[0]["trigger"], "active_open");
        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        expect_counts(stop[0], 1, 2, 0, 0, 1);
    }
    expect_no_program_of_ours(cg);
}

TEST_F(Enforce, AlwaysModeLowersALongerIdle) {
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s", "--mode", "always"});
        EXPECT_EQ(enf.start()["programs"], json::array({"sockops", "setsockopt"}));
        auto own = probe_in(cg, {"--name", "rw_enf_long", "--keepalive", "--keepidle", "600",
                                 "--keepintvl", "20", "--keepcnt", "4"});
        Conn a = connect_probe(*own);
        EXPECT_EQ(ka_of(*own, "client"), (Ka{1, 30, 20, 4}));
        EXPECT_EQ(own->wait(), 0);
        // A later TCP_KEEPIDLE above --idle is lowered as the kernel applies it.
        auto late = probe_in(cg, {"--name", "rw_enf_clamp", "--late-keepidle", "900"});
        Conn b = connect_probe(*late);
        EXPECT_EQ(late->expect("late_keepidle"), "0");
        EXPECT_EQ(ka_of(*late, "client"), (Ka{1, 30, def.intvl, def.cnt}));
        EXPECT_EQ(late->wait(), 0);

        auto events = enf.stop();
        auto lowered = enforced_at(events, a.client_port);
        ASSERT_EQ(lowered.size(), 1u) << json(events).dump(2);
        expect_enforced(lowered[0], "active_open", own->pid(), "rw_enf_long", "connect", cg,
                        a.client_port, a.server_port, ka_json(true, 600, 20, 4),
                        ka_json(true, 30, 20, 4), false);
        auto at_b = enforced_at(events, b.client_port);
        ASSERT_EQ(at_b.size(), 2u) << json(events).dump(2);
        EXPECT_EQ(at_b[0]["trigger"], "active_open");
        // previous.idle_s: what the application asked for.
        expect_enforced(at_b[1], "setsockopt", late->pid(), "rw_enf_clamp", "sockopt", cg,
                        b.client_port, b.server_port, ka_json(true, 900, def.intvl, def.cnt),
                        ka_json(true, 30, def.intvl, def.cnt), false);
        EXPECT_EQ(at_b[1]["netns"], own_netns());
        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        expect_counts(stop[0], 2, 2, 0, 1, 0);
    }
    expect_no_program_of_ours(cg);
}

TEST_F(Enforce, ExistingChangesAConnectionMadeBeforeStart) {
    auto early = probe_in(cg, {"--name", "rw_enf_early", "--wait-line"}, true);
    Conn c = connect_probe(*early);
    early->expect("waiting");
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s", "--existing"});
        EXPECT_EQ(enf.start()["existing"],
                  (json{{"connections", 2}, {"namespaces", 1}, {"namespaces_skipped", 0}}));
        EXPECT_GE(enf.start()["owners_seeded"].get<int>(), 3); // listener + both ends
        early->write_stdin("go\n");
        EXPECT_EQ(ka_of(*early, "client"), (Ka{1, 30, def.intvl, def.cnt}));
        EXPECT_EQ(ka_of(*early, "server"), (Ka{1, 30, def.intvl, def.cnt}));
        EXPECT_EQ(early->wait(), 0);

        auto events = enf.stop();
        const json before = ka_json(false, def.idle, def.intvl, def.cnt);
        const json after = ka_json(true, 30, def.intvl, def.cnt);
        auto client = enforced_at(events, c.client_port);
        ASSERT_EQ(client.size(), 1u) << json(events).dump(2);
        // Connected before we attached: its owner comes from the fd tables.
        expect_enforced(client[0], "existing", early->pid(), "rw_enf_early", "seeded", cg,
                        c.client_port, c.server_port, before, after, false);
        auto server = enforced_at(events, c.server_port);
        ASSERT_EQ(server.size(), 1u);
        expect_enforced(server[0], "existing", early->pid(), "rw_enf_early", "seeded", cg,
                        c.server_port, c.client_port, before, after, false);
        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        expect_counts(stop[0], 0, 0, 2, 0, 0);
    }
    expect_no_program_of_ours(cg);
}

TEST_F(Enforce, ExistingReachesTheCgroupsOtherNetworkNamespaces) {
    NetNs ns("enforce");
    Child probe(in_cgroup(cg, {"/usr/bin/nsenter", "--net=/run/netns/" + ns.name(), probe_bin(),
                               "--name", "rw_enf_ns", "--wait-line"}),
                true);
    Conn c = connect_probe(probe);
    probe.expect("waiting");
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s", "--existing"});
        EXPECT_EQ(enf.start()["existing"],
                  (json{{"connections", 2}, {"namespaces", 2}, {"namespaces_skipped", 0}}));
        probe.write_stdin("go\n");
        Ka k = ka_of(probe, "client");
        EXPECT_EQ(k.enabled, 1);
        EXPECT_EQ(k.idle, 30);
        EXPECT_EQ(probe.wait(), 0);
        auto events = enf.stop();
        auto client = enforced_at(events, c.client_port);
        ASSERT_EQ(client.size(), 1u) << json(events).dump(2);
        EXPECT_EQ(client[0]["trigger"], "existing");
        EXPECT_EQ(client[0]["process"]["pid"], probe.pid());
        EXPECT_EQ(client[0]["netns"], ns.inode());
        // A new namespace starts with the kernel's defaults, whatever the host's sysctls.
        EXPECT_EQ(client[0]["previous"], ka_json(false, 7200, 75, 9));
        EXPECT_EQ(client[0]["applied"], ka_json(true, 30, 75, 9));
    }
    expect_no_program_of_ours(cg);
}

TEST_F(Enforce, DryRunChangesNothingAndReportsTheWouldBeChange) {
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s", "--interval", "5s", "--probes", "3",
                        "--dry-run"});
        EXPECT_EQ(enf.start()["dry_run"], true);
        auto v4 = probe_in(cg, {"--name", "rw_enf_dry"});
        Conn c = connect_probe(*v4);
        EXPECT_EQ(ka_of(*v4, "client"), (Ka{0, def.idle, def.intvl, def.cnt}));
        EXPECT_EQ(ka_of(*v4, "server"), (Ka{0, def.idle, def.intvl, def.cnt}));
        EXPECT_EQ(v4->wait(), 0);
        auto v6 = probe_in(cg, {"--name", "rw_enf_dry6", "--addr", "::1"});
        Conn c6 = connect_probe(*v6);
        EXPECT_EQ(ka_of(*v6, "client"), (Ka{0, def.idle, def.intvl, def.cnt}));
        EXPECT_EQ(v6->wait(), 0);

        auto events = enf.stop();
        const json before = ka_json(false, def.idle, def.intvl, def.cnt);
        const json would = ka_json(true, 30, 5, 3);
        ASSERT_NO_FATAL_FAILURE(
            expect_both_ends_enforced(events, c, *v4, "rw_enf_dry", cg, before, would, true));
        auto active6 = enforced_at(events, c6.client_port);
        ASSERT_EQ(active6.size(), 1u);
        expect_enforced(active6[0], "active_open", v6->pid(), "rw_enf_dry6", "connect", cg,
                        c6.client_port, c6.server_port, before, would, true, "::1");
        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        expect_counts(stop[0], 2, 2, 0, 0, 0);
    }
    expect_no_program_of_ours(cg);
}

TEST_F(Enforce, PinnedEnforcementOutlivesRstwatchUntilRemoved) {
    const std::string pin_dir = "/sys/fs/bpf/rstwatch/enforce/cg" + std::to_string(cg.id());
    {
        // --pin without --duration: installs, reports, exits.
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s", "--pin"});
        EXPECT_EQ(enf.start()["pinned"], pin_dir);
        auto events = enf.stop(0);
        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        EXPECT_EQ(stop[0]["end_reason"], "installed");
        EXPECT_EQ(stop[0]["detached"], false);
        EXPECT_EQ(stop[0]["pinned"], pin_dir);
    }
    std::string shown = sh("bpftool cgroup show '" + cg.dir() + "'");
    EXPECT_NE(shown.find("rw_enf_sockops"), std::string::npos) << shown;

    // Enforced with no rstwatch running.
    auto p = probe_in(cg, {"--name", "rw_enf_pinned"});
    connect_probe(*p);
    EXPECT_EQ(ka_of(*p, "client"), (Ka{1, 30, def.intvl, def.cnt}));
    EXPECT_EQ(p->wait(), 0);

    // A second enforcement of the same cgroup is refused while the pin exists.
    Child again({rstwatch_bin(), "enforce", "--cgroup", cg.rel(), "--idle", "40s"});
    EXPECT_EQ(again.wait(), 3);
    EXPECT_NE(again.stderr_text().find("already has a pinned enforcement"), std::string::npos)
        << again.stderr_text();

    Child status({rstwatch_bin(), "enforce", "--status", "--cgroup", cg.rel()});
    auto lines = status.read_all(20s);
    EXPECT_EQ(status.wait(), 0) << status.stderr_text();
    ASSERT_EQ(lines.size(), 1u);
    json st = json::parse(lines[0]);
    EXPECT_EQ(st["event"], "enforce_status");
    EXPECT_EQ(st["cgroup"], cg.rel());
    EXPECT_EQ(st["cgroup_id"], cg.id());
    EXPECT_EQ(st["mode"], "unset-only");
    EXPECT_EQ(st["idle_s"], 30);
    EXPECT_EQ(st["programs"], json::array({"sockops"}));
    EXPECT_EQ(st["pinned"], pin_dir);
    EXPECT_EQ(st["installer"]["running"], false);
    EXPECT_EQ(st["enforced"]["active_open"], 1);
    EXPECT_EQ(st["enforced"]["passive_open"], 1);
    expect_valid({st});

    Child remove({rstwatch_bin(), "enforce", "--remove", "--cgroup", cg.rel()});
    auto removed = remove.read_all(20s);
    EXPECT_EQ(remove.wait(), 0) << remove.stderr_text();
    ASSERT_EQ(removed.size(), 1u);
    json r = json::parse(removed[0]);
    EXPECT_EQ(r["event"], "enforce_removed");
    EXPECT_EQ(r["cgroup"], cg.rel());
    EXPECT_EQ(r["pin_dir"], pin_dir);
    EXPECT_EQ(r["removed"], json::array({"sockops"}));
    expect_valid({r});
    expect_no_program_of_ours(cg);
    EXPECT_NE(access(pin_dir.c_str(), F_OK), 0);

    auto after = probe_in(cg, {"--name", "rw_enf_after"});
    connect_probe(*after);
    EXPECT_EQ(ka_of(*after, "client"), (Ka{0, def.idle, def.intvl, def.cnt}));
    EXPECT_EQ(after->wait(), 0);
}

TEST_F(Enforce, DurationEndsItAndDetaches) {
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "45s", "--duration", "300ms"});
        auto events = enf.stop(0);
        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        EXPECT_EQ(stop[0]["end_reason"], "duration");
        EXPECT_EQ(stop[0]["detached"], true);
    }
    expect_no_program_of_ours(cg);
}

TEST_F(Enforce, SigtermDetachesAndSigkillLeavesNothingEither) {
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s", "--mode", "always"});
        auto events = enf.stop(SIGTERM);
        auto stop = of_type(events, "enforce_stop");
        ASSERT_EQ(stop.size(), 1u);
        EXPECT_EQ(stop[0]["end_reason"], "signal");
        EXPECT_EQ(stop[0]["detached"], true);
    }
    expect_no_program_of_ours(cg);
    {
        // No chance to clean up: the kernel detaches the links with the last fd.
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s", "--mode", "always"});
        enf.child().signal(SIGKILL);
        EXPECT_EQ(enf.child().wait(), 128 + SIGKILL);
    }
    expect_no_program_of_ours(cg);
    auto p = probe_in(cg, {"--name", "rw_enf_killed"});
    connect_probe(*p);
    EXPECT_EQ(ka_of(*p, "client"), (Ka{0, def.idle, def.intvl, def.cnt}));
    EXPECT_EQ(p->wait(), 0);
}

namespace {

// Whether an ELF file asks for a dynamic loader (has a PT_INTERP header).
bool is_dynamic(const std::string &path) {
    return sh("readelf -l '" + path + "' 2>&1").find("INTERP") != std::string::npos;
}

} // namespace

// Issue 16's case: a statically linked program (as a Go binary is), connected
// before enforcement started, gets keepalive from --existing: no LD_PRELOAD
// tool can reach it. Also the regression test for kernels whose verifier
// refuses the socket walked from a file (6.18.44): the owner is still found.
TEST_F(Enforce, ExistingRescuesAStaticBinarysOpenConnection) {
    const std::string bin = RW_KA_PROBE_STATIC_BIN;
    ASSERT_FALSE(is_dynamic(bin)) << bin << " should be statically linked";
    auto early = std::make_unique<Child>(
        in_cgroup(cg, {bin, "--name", "rw_static_cli", "--wait-line"}), true);
    Conn c = connect_probe(*early);
    early->expect("waiting");
    {
        EnforceRun enf({"--cgroup", cg.rel(), "--idle", "45s", "--existing"});
        EXPECT_EQ(enf.start()["programs_left_out"], json::array()) << enf.start().dump();
        EXPECT_GE(enf.start()["owners_seeded"].get<int>(), 3) << enf.start().dump();
        // What the kernel holds, seen from outside the process: ss shows the timer.
        std::string ss = sh(
            "ss -tno state established '( sport = :" + std::to_string(c.client_port) + " )' 2>&1");
        EXPECT_NE(ss.find("timer:(keepalive"), std::string::npos) << ss;
        early->write_stdin("go\n");
        EXPECT_EQ(ka_of(*early, "client"), (Ka{1, 45, def.intvl, def.cnt}));
        EXPECT_EQ(ka_of(*early, "server"), (Ka{1, 45, def.intvl, def.cnt}));
        EXPECT_EQ(early->wait(), 0);

        auto events = enf.stop();
        auto client = enforced_at(events, c.client_port);
        ASSERT_EQ(client.size(), 1u) << json(events).dump(2);
        expect_enforced(client[0], "existing", early->pid(), "rw_static_cli", "seeded", cg,
                        c.client_port, c.server_port, ka_json(false, def.idle, def.intvl, def.cnt),
                        ka_json(true, 45, def.intvl, def.cnt), false);
    }
    expect_no_program_of_ours(cg);
}

// A kernel that refuses an optional program (forced here) costs what that
// program does and nothing else: one warning names it, enforce_start lists it,
// and new connections still get keepalive.
TEST_F(Enforce, RefusedOptionalProgramIsLeftOutAndTheRestWorks) {
    ScopedEnv refuse("RSTWATCH_TEST_REFUSE_PROGRAMS", "rw_enf_owners");
    EnforceRun enf({"--cgroup", cg.rel(), "--idle", "30s"});
    const json left = enf.start()["programs_left_out"];
    ASSERT_EQ(left.size(), 1u) << enf.start().dump();
    EXPECT_EQ(left[0]["program"], "rw_enf_owners");
    EXPECT_EQ(left[0]["section"], "iter/task_file");
    EXPECT_NE(left[0]["lost"].get<std::string>().find("existed before enforcement"),
              std::string::npos);
    EXPECT_FALSE(left[0]["reason"].get<std::string>().empty());
    EXPECT_EQ(enf.start()["owners_seeded"], 0);

    auto probe = probe_in(cg, {"--name", "rw_enf_after"});
    Conn c = connect_probe(*probe);
    EXPECT_EQ(ka_of(*probe, "client"), (Ka{1, 30, def.intvl, def.cnt}));
    EXPECT_EQ(probe->wait(), 0);
    auto events = enf.stop();
    EXPECT_EQ(enforced_at(events, c.client_port).size(), 1u) << json(events).dump(2);
    const std::string err = enf.child().stderr_text();
    const std::string warn = "refused the BPF program rw_enf_owners (iter/task_file), left out";
    auto first = err.find(warn);
    EXPECT_NE(first, std::string::npos) << err;
    EXPECT_EQ(err.find(warn, first + 1), std::string::npos) << "warned twice: " << err;
}

// The essential program refused: exit 3, naming it and the kernel's reason;
// nothing is left attached.
TEST_F(Enforce, RefusedEssentialProgramFailsWithTheVerifiersReason) {
    ScopedEnv refuse("RSTWATCH_TEST_REFUSE_PROGRAMS", "rw_enf_sockops");
    Child c({rstwatch_bin(), "enforce", "--cgroup", cg.rel(), "--idle", "30s"});
    EXPECT_TRUE(c.read_all(20s).empty());
    EXPECT_EQ(c.wait(20s), 3);
    const std::string err = c.stderr_text();
    EXPECT_NE(err.find("loading the enforce BPF programs into the kernel failed"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("prog 'rw_enf_sockops'"), std::string::npos) << err;
    expect_no_program_of_ours(cg);
}
