// Privileged: least privilege, proven. Each subcommand runs under capsh as the
// user nobody with exactly its documented capability set as ambient
// capabilities (the bounding set cut down to the same set, RLIMIT_MEMLOCK 0):
// it works, on real traffic. Then, for each capability of the set, the same run
// without it fails with exit 3 and a message naming that capability.
//
// Why nobody and not root with fewer capabilities: root owns /sys/kernel/tracing,
// /proc/timer_list and the like, so uid 0 reads them with no capability at all
// and a root-based test would under-report what an unprivileged service account
// needs (CAP_DAC_READ_SEARCH for tracefs was found exactly this way).
// A new subcommand is one row of privilege_cases().
#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf_objects.hpp"
#include "harness.hpp"
#include "bpf/caps.hpp"

using namespace rwtest;
using rstwatch::Cap;

namespace {

std::string lower(std::string s) {
    for (char &c : s)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::uint64_t mask_of(const std::vector<Cap> &caps) {
    std::uint64_t m = 0;
    for (Cap c : caps)
        m |= std::uint64_t(1) << int(c);
    return m;
}

// argv that runs rstwatch ARGS as nobody with exactly `caps`.
std::vector<std::string> as_nobody_with(const std::vector<Cap> &caps,
                                        const std::vector<std::string> &args) {
    std::string keep, drop;
    for (Cap c : caps)
        keep += (keep.empty() ? "" : ",") + lower(rstwatch::cap_name(c));
    const std::uint64_t mask = mask_of(caps);
    for (int c = 0; c <= rstwatch::cap_last(); ++c)
        if (!((mask >> c) & 1)) drop += (drop.empty() ? "" : ",") + lower(rstwatch::cap_name(c));
    // Order matters: drop the bounding set while still root with CAP_SETPCAP,
    // keep the set (plus what the uid switch needs) across setuid, then raise
    // the set as ambient so it survives exec into a binary without file caps.
    std::vector<std::string> argv{"/usr/sbin/capsh", "--drop=" + drop,
                                  "--caps=cap_setpcap,cap_setuid,cap_setgid+ep" +
                                      (keep.empty() ? "" : " " + keep + "+eip"),
                                  "--keep=1", "--user=nobody"};
    if (!keep.empty()) argv.push_back("--addamb=" + keep);
    // A hard memlock limit of 0: the kernel charges BPF memory to the memory
    // cgroup (5.11+), so CAP_SYS_RESOURCE to raise it must not be needed.
    argv.insert(argv.end(), {"--", "-c", "ulimit -l 0 && exec \"$@\"", "rw", rstwatch_bin()});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// The running process really is nobody with exactly `caps`.
void expect_identity(pid_t pid, const std::vector<Cap> &caps) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    std::map<std::string, std::string> f;
    while (std::getline(in, line)) {
        auto colon = line.find(':');
        if (colon != std::string::npos) f[line.substr(0, colon)] = line.substr(colon + 1);
    }
    const std::uint64_t mask = mask_of(caps);
    EXPECT_EQ(std::stoull(f["CapEff"], nullptr, 16), mask) << f["CapEff"];
    EXPECT_EQ(std::stoull(f["CapPrm"], nullptr, 16), mask) << f["CapPrm"];
    EXPECT_EQ(std::stoull(f["CapBnd"], nullptr, 16), mask) << f["CapBnd"];
    std::istringstream uid(f["Uid"]);
    unsigned real = 0, eff = 0;
    uid >> real >> eff;
    EXPECT_EQ(real, 65534u);
    EXPECT_EQ(eff, 65534u);
}

using Launch = std::function<std::unique_ptr<Child>(const std::vector<std::string> &args)>;

struct PrivCase {
    std::string name;
    std::vector<Cap> caps;                     // the documented set (docs/security.md)
    std::vector<std::string> quick;            // args for the runs that must fail
    std::function<void(const Launch &)> works; // runs it with the set on real traffic
    // How a run without `missing` must end; default: exit 3, one line naming it.
    std::function<void(Child &, Cap missing)> without = nullptr;
};

// Runs `rstwatch ARGS` as root and returns its stdout lines as JSON.
std::vector<json> as_root(const std::vector<std::string> &args, int expect_exit = 0) {
    std::vector<std::string> argv{rstwatch_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c(argv);
    std::vector<json> out;
    for (auto &l : c.read_all(30s))
        out.push_back(json::parse(l, nullptr, false));
    EXPECT_EQ(c.wait(), expect_exit) << c.stderr_text();
    return out;
}

std::uint64_t cgroup_id_of(const std::string &dir) {
    struct stat st {};
    stat(dir.c_str(), &st);
    return st.st_ino;
}

// enforce --pin as a service account: the documented setup gives it the pin
// directory of its cgroup (or CAP_DAC_OVERRIDE over root's /sys/fs/bpf/rstwatch).
std::string pin_dir_for_nobody(const std::string &cgroup_dir) {
    const std::string dir =
        "/sys/fs/bpf/rstwatch/enforce/cg" + std::to_string(cgroup_id_of(cgroup_dir));
    sh("mkdir -p " + dir + " && chown nobody " + dir);
    return dir;
}

std::vector<json> lines_as_json(Child &c) {
    std::vector<json> out;
    for (auto &l : c.read_all(30s)) {
        json j = json::parse(l, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << l;
        if (!j.is_discarded()) out.push_back(j);
    }
    return out;
}

std::vector<PrivCase> privilege_cases() {
    const std::vector<Cap> enforce_caps{Cap::bpf, Cap::perfmon, Cap::net_admin};
    const std::vector<Cap> trace_caps{Cap::bpf, Cap::perfmon, Cap::net_admin};
    const std::vector<Cap> keepalive_caps{Cap::bpf, Cap::perfmon, Cap::dac_read_search};
    const std::vector<Cap> audit_caps{Cap::bpf, Cap::perfmon};
    return {
        {"trace",
         trace_caps,
         {"trace", "--port", "1"},
         [trace_caps](const Launch &run) {
             const int port = free_port();
             auto rw = run({"trace", "--events", "reset", "--port", std::to_string(port)});
             auto first = rw->read_line(15s);
             ASSERT_TRUE(first) << rw->stderr_text();
             json start = json::parse(*first);
             EXPECT_EQ(start["setsockopt_hook"], "cgroup"); // cgroup program attached
             expect_identity(rw->pid(), trace_caps);
             Child peer({peer_bin(), "refused", std::to_string(port), "--count", "3", "--name",
                         "rw_priv"});
             EXPECT_EQ(peer.expect("done", 30s), "3");
             peer.wait();
             sleep(1);
             rw->signal(SIGINT);
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             int sent = 0, received = 0;
             for (auto &e : of_type(events, "tcp_reset")) {
                 if (e["direction"] == "sent" && e["local"]["port"] == port) ++sent;
                 if (e["direction"] == "received" && e["remote"]["port"] == port) {
                     ++received;
                     EXPECT_EQ(e["process"]["pid"], peer.pid());
                     EXPECT_EQ(e["process"]["comm"], "rw_priv");
                 }
             }
             EXPECT_EQ(sent, 3);
             EXPECT_EQ(received, 3);
         }},
        {"trace_keepalive",
         keepalive_caps,
         {"trace", "--events", "keepalive", "--port", "1"},
         [keepalive_caps](const Launch &run) {
             auto rw = run({"trace", "--events", "keepalive"});
             auto first = rw->read_line(15s);
             ASSERT_TRUE(first) << rw->stderr_text();
             EXPECT_EQ(json::parse(*first)["setsockopt_hook"], "syscall");
             expect_identity(rw->pid(), keepalive_caps);
             Child server({peer_bin(), "server", "--hold-ms", "3000"});
             int sport = std::stoi(server.expect("listening"));
             Child peer({peer_bin(), "sockopts", "--port", std::to_string(sport), "--hold-ms",
                         "200", "--name", "rw_priv_ka"});
             peer.expect("connected");
             for (int i = 0; i < 8; ++i)
                 peer.expect("sockopt");
             peer.wait();
             sleep(1);
             rw->signal(SIGINT);
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             int mine = 0;
             for (auto &e : of_type(events, "keepalive_set"))
                 if (e["process"]["pid"] == peer.pid()) ++mine;
             EXPECT_EQ(mine, 8); // the helper's eight calls, each seen
         }},
        {"audit",
         audit_caps,
         {"audit", "--port", "1"},
         [](const Launch &run) {
             // Root-owned connections: audit as nobody needs no ptrace or DAC
             // capability to name them (the kernel's iterator reads them).
             Child server({peer_bin(), "server", "--hold-ms", "8000"});
             int sport = std::stoi(server.expect("listening"));
             Child client({peer_bin(), "client", "--port", std::to_string(sport), "--hold-ms",
                           "8000", "--name", "rw_priv_audit"});
             int cport = std::stoi(client.expect("connected"));
             auto rw = run({"audit", "--port", std::to_string(sport)});
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             bool found = false;
             for (auto &e : of_type(events, "audit_socket"))
                 if (e["process"]["pid"] == client.pid() && e["local"]["port"] == cport) {
                     found = true;
                     EXPECT_EQ(e["process"]["comm"], "rw_priv_audit");
                     EXPECT_EQ(e["process"]["uid"], 0);
                 }
             EXPECT_TRUE(found) << json(events).dump(2);
         }},
        // Failure runs are under rw_nobpf: even a regression could not enforce.
        {"enforce",
         enforce_caps,
         {"enforce", "--cgroup", "/", "--idle", "60s", "--dry-run"},
         [enforce_caps](const Launch &run) {
             TestCgroup cg("priv-enf");
             Child server({peer_bin(), "server", "--hold-ms", "3000"});
             const int sport = std::stoi(server.expect("listening"));
             auto rw = run({"enforce", "--cgroup", cg.path(), "--idle", "45s"});
             auto first = rw->read_line(20s);
             ASSERT_TRUE(first) << rw->stderr_text();
             EXPECT_EQ(json::parse(*first)["event"], "enforce_start");
             expect_identity(rw->pid(), enforce_caps);
             Child client(cg.wrap({peer_bin(), "client", "--port", std::to_string(sport),
                                   "--hold-ms", "300", "--name", "rw_priv_enf"}));
             const int cport = std::stoi(client.expect("connected"));
             client.wait();
             sleep(1);
             rw->signal(SIGINT);
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             bool enforced = false;
             for (auto &e : of_type(events, "keepalive_enforced"))
                 if (e["local"]["port"] == cport) {
                     enforced = true;
                     EXPECT_EQ(e["process"]["pid"], client.pid());
                     EXPECT_EQ(e["applied"]["idle_s"], 45);
                     EXPECT_EQ(e["trigger"], "active_open");
                 }
             EXPECT_TRUE(enforced) << json(events).dump(2);
             EXPECT_EQ(sh("bpftool cgroup show " + cg.path() + " | wc -l"), "0\n");
         }},
        // --pin: with its pin directory (see pin_dir_for_nobody) no extra capability.
        {"enforce_pin",
         enforce_caps,
         {"enforce", "--cgroup", "/", "--idle", "60s", "--pin"},
         [](const Launch &run) {
             TestCgroup cg("priv-pin");
             const std::string dir = pin_dir_for_nobody(cg.path());
             auto rw = run({"enforce", "--cgroup", cg.path(), "--idle", "45s", "--pin"});
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             auto stop = of_type(events, "enforce_stop");
             ASSERT_EQ(stop.size(), 1u) << json(events).dump(2);
             EXPECT_EQ(stop[0]["pinned"], dir);
             EXPECT_NE(sh("bpftool cgroup show " + cg.path()).find("sock_ops"), std::string::npos);
             // Left attached on purpose; the root run removes it.
             auto removed = of_type(as_root({"enforce", "--remove", "--cgroup", cg.path()}),
                                    "enforce_removed");
             ASSERT_EQ(removed.size(), 1u);
             EXPECT_EQ(removed[0]["removed"], json::array({"sockops"}));
         }},
        // --remove of a service account's own pins: CAP_BPF only.
        {"enforce_remove",
         {Cap::bpf},
         {"enforce", "--remove", "--cgroup", "/"},
         [enforce_caps](const Launch &run) {
             TestCgroup cg("priv-rm");
             pin_dir_for_nobody(cg.path());
             Child pin(as_nobody_with(
                 enforce_caps, {"enforce", "--cgroup", cg.path(), "--idle", "45s", "--pin"}));
             pin.read_all(30s);
             ASSERT_EQ(pin.wait(), 0) << pin.stderr_text();
             auto rw = run({"enforce", "--remove", "--cgroup", cg.path()});
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             auto removed = of_type(events, "enforce_removed");
             ASSERT_EQ(removed.size(), 1u) << json(events).dump(2);
             EXPECT_EQ(removed[0]["removed"], json::array({"sockops"}));
             EXPECT_EQ(sh("bpftool cgroup show " + cg.path() + " | wc -l"), "0\n");
         }},
        // --status enumerates the kernel's BPF links: CAP_SYS_ADMIN, as the kernel wants.
        {"enforce_status",
         {Cap::sys_admin},
         {"enforce", "--status"},
         [](const Launch &run) {
             TestCgroup cg("priv-st");
             as_root({"enforce", "--cgroup", cg.path(), "--idle", "45s", "--pin"});
             auto rw = run({"enforce", "--status", "--cgroup", cg.path()});
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             auto status = of_type(events, "enforce_status");
             ASSERT_EQ(status.size(), 1u) << json(events).dump(2);
             EXPECT_EQ(status[0]["cgroup_id"], cgroup_id_of(cg.path()));
             EXPECT_EQ(status[0]["idle_s"], 45);
             as_root({"enforce", "--remove", "--cgroup", cg.path()});
         }},
        // doctor degrades instead of failing: without the socket iterator's
        // capabilities its connections check is skipped, naming what is missing.
        {"doctor",
         audit_caps,
         {"doctor"},
         [](const Launch &run) {
             auto rw = run({"doctor"});
             auto events = lines_as_json(*rw);
             const int status = rw->wait();
             EXPECT_TRUE(status == 0 || status == 1) << status << rw->stderr_text();
             bool ran = false;
             for (auto &e : of_type(events, "doctor_check"))
                 if (e["check"] == "keepalive_off_connections") ran = e["skipped"] == false;
             EXPECT_TRUE(ran) << json(events).dump(2);
         },
         [](Child &c, Cap missing) {
             bool named = false;
             for (auto &l : c.read_all(30s)) {
                 json e = json::parse(l, nullptr, false);
                 if (e.value("check", "") == "keepalive_off_connections")
                     named = e["skipped"] == true &&
                             e["observed"].get<std::string>().find(
                                 "missing " + rstwatch::cap_name(missing)) != std::string::npos;
             }
             const int status = c.wait();
             EXPECT_TRUE(status == 0 || status == 1) << status << c.stderr_text();
             EXPECT_TRUE(named) << "the skipped check does not name "
                                << rstwatch::cap_name(missing);
         }},
        // report reads files: no capability at all.
        {"report",
         {},
         {"report"},
         [](const Launch &run) {
             const std::string input = "/tmp/rwtest-report-" + std::to_string(getpid());
             sh(std::string(RW_BINARY_DIR) + "/tests/rw_schema_samples > " + input +
                " && chmod 0644 " + input);
             auto rw = run({"report", input});
             auto events = lines_as_json(*rw);
             EXPECT_EQ(rw->wait(), 0) << rw->stderr_text();
             EXPECT_EQ(of_type(events, "report_summary").size(), 1u) << json(events).dump(2);
             unlink(input.c_str());
         }},
    };
}

} // namespace

class LeastPrivilege : public ::testing::TestWithParam<PrivCase> {};

TEST_P(LeastPrivilege, ExactSetWorksAndEachMissingCapabilityIsNamed) {
    RW_REQUIRE_BPF();
    if (access("/usr/sbin/capsh", X_OK) != 0) GTEST_SKIP() << "capsh (libcap2-bin) missing";
    const PrivCase &c = GetParam();
    // Recorded, not changed (they are host-wide): with CAP_BPF and CAP_PERFMON
    // neither sysctl changes what rstwatch needs (docs/security.md).
    std::printf("[ info ] %s", sh("sysctl kernel.unprivileged_bpf_disabled "
                                  "kernel.perf_event_paranoid | tr '\\n' ' '; echo")
                                   .c_str());

    {
        SCOPED_TRACE("with exactly the documented set");
        c.works([&](const std::vector<std::string> &args) {
            return std::make_unique<Child>(as_nobody_with(c.caps, args));
        });
    }
    for (Cap missing : c.caps) {
        std::vector<Cap> fewer;
        for (Cap x : c.caps)
            if (x != missing) fewer.push_back(x);
        SCOPED_TRACE("without " + rstwatch::cap_name(missing));
        // Under rw_nobpf: the refusal comes from rstwatch's own check, before
        // any bpf(2) call, not from the kernel's EPERM.
        std::vector<std::string> args{helper_bin("rw_nobpf"), rstwatch_bin()};
        args.insert(args.end(), c.quick.begin(), c.quick.end());
        auto argv = as_nobody_with(fewer, {});
        argv.pop_back(); // rstwatch_bin(): rw_nobpf comes first
        argv.insert(argv.end(), args.begin(), args.end());
        Child run(argv);
        if (c.without) {
            c.without(run, missing);
            continue;
        }
        run.read_all(20s);
        EXPECT_EQ(run.wait(20s), 3) << run.stderr_text();
        const std::string err = run.stderr_text();
        EXPECT_NE(err.find("missing " + rstwatch::cap_name(missing)), std::string::npos) << err;
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
        std::printf("[ info ] %s without %s: %s", c.name.c_str(),
                    rstwatch::cap_name(missing).c_str(), err.c_str());
    }
}

INSTANTIATE_TEST_SUITE_P(Subcommands, LeastPrivilege, ::testing::ValuesIn(privilege_cases()),
                         [](const auto &info) { return info.param.name; });
