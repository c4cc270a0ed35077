// rw_report_gen: a realistic multi-host rstwatch NDJSON stream for `rstwatch
// report` benchmarks and smoke tests. Lines come from the project's own JSON
// formatter and diagnose stage fed with synthetic records, so their shape,
// field order and size are exactly what `rstwatch trace`/`audit` write.
//
//   rw_report_gen --size 1G -o /tmp/fleet.ndjson     # about 1.6 M lines
//   rw_report_gen --lines 5000 --seed 7              # to stdout
//
// The fleet: --hosts hosts (api/batch clients, db/cache servers, proxies),
// 3-6 processes each (--procs N: N each), some in containers (own netns, kubepods cgroup). Each
// simulated connection emits its lifecycle on both ends when both are in the
// fleet: keepalive_set, then connection_closed (most), a reset after idling
// behind a 350 s NAT (origin unknown on the client: the far end is another
// host), a silent-drop tcp_timeout, a peer abort, or an audit_socket
// snapshot; plus RSTs to closed ports, process/session summaries and lost
// records. Ephemeral ports are allocated sequentially per host and wrap, as
// Linux does, so 4-tuples get reused over a long run.
#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <sys/socket.h>
#include <vector>

#include "event/diagnose.hpp"
#include "util/cgroup_fs.hpp"
#include "event/events.hpp"
#include "output/format.hpp"
#include "util/units.hpp"

using namespace rstwatch;

namespace {

struct Proc {
    std::uint32_t pid, uid;
    std::string comm;
    CgroupInfo cg;
    std::uint32_t netns;
    bool container;
    // keepalive as the app configures it: 0 off, else idle seconds
    std::uint32_t ka_idle_s;
    bool ka_socket; // TCP_KEEPIDLE set by the app (else sysctl 7200)
    std::uint16_t listen_port;
};

struct Host {
    std::string name;
    std::uint8_t addr[4];
    std::unique_ptr<Formatter> fmt;
    std::vector<Proc> procs;
    bool server, client;
    std::uint16_t next_port = 32768;
    std::uint64_t resets = 0, timeouts = 0, conns = 0;
};

class Gen {
  public:
    // procs_per_host 0: 3-6 per host.
    Gen(unsigned hosts, unsigned procs_per_host, std::uint64_t seed) : rng_(seed) {
        static const char *roles[] = {"api", "api", "batch", "db", "cache", "proxy"};
        for (unsigned i = 0; i < hosts; ++i) {
            Host h;
            std::string role = roles[i % 6];
            char name[64];
            std::snprintf(name, sizeof name, "prod-%s-%02u.eu-west-1.internal", role.c_str(), i);
            h.name = name;
            h.addr[0] = 10;
            h.addr[1] = std::uint8_t(1 + i / 200);
            h.addr[2] = std::uint8_t(i % 200);
            h.addr[3] = std::uint8_t(10 + i % 50);
            h.fmt = make_json_formatter(h.name);
            h.server = role == "db" || role == "cache" || role == "proxy";
            h.client = role != "db" && role != "cache";
            unsigned nprocs = procs_per_host ? procs_per_host : 3 + unsigned(rng_() % 4);
            for (unsigned p = 0; p < nprocs; ++p)
                h.procs.push_back(make_proc(role, p));
            hosts_.push_back(std::move(h));
        }
    }

    // Appends at least one line for one simulated happening.
    void step(std::string &out) {
        now_ += std::int64_t(rng_() % 2'000'000); // up to 2 ms between happenings
        const unsigned roll = unsigned(rng_() % 1000);
        if (roll < 40) return closed_port_reset(out);
        if (roll < 44) return summaries(out);
        if (roll < 45) return lost(out);
        connection(out);
    }

  private:
    Proc make_proc(const std::string &role, unsigned idx) {
        static const char *clients[] = {"java", "python3", "node", "gunicorn", "celery", "envoy"};
        static const char *servers[] = {"postgres", "redis-server", "nginx", "haproxy"};
        Proc p;
        p.pid = 1000 + std::uint32_t(rng_() % 4'000'000);
        p.uid = idx == 0 ? 0 : 1000 + std::uint32_t(rng_() % 100);
        const bool server_role = role == "db" || role == "cache" || role == "proxy";
        if (server_role && idx == 0)
            p.comm = role == "db" ? "postgres" : role == "cache" ? "redis-server" : "nginx";
        else
            p.comm = server_role ? servers[rng_() % 4] : clients[rng_() % 6];
        p.listen_port = p.comm == "postgres"       ? 5432
                        : p.comm == "redis-server" ? 6379
                        : p.comm == "nginx"        ? 443
                        : p.comm == "haproxy"      ? 8443
                                                   : 0;
        p.container = rng_() % 3 == 0;
        if (p.container) {
            static const char hex[] = "0123456789abcdef";
            std::string id(64, '0'), pod(36, '0');
            for (auto &c : id)
                c = hex[rng_() % 16];
            for (std::size_t i = 0; i < pod.size(); ++i)
                pod[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hex[rng_() % 16];
            std::string pod_us = pod;
            for (auto &c : pod_us)
                if (c == '-') c = '_';
            p.cg.path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + pod_us +
                        ".slice/cri-containerd-" + id + ".scope";
            p.cg.ids.container_id = id;
            p.cg.ids.pod_uid = pod;
            p.netns = 4026532000u + std::uint32_t(rng_() % 5000);
        } else {
            p.cg.path = "/system.slice/" + p.comm + ".service";
            p.netns = 4026531840u;
        }
        switch (rng_() % 10) {
        case 0:
        case 1:
            p.ka_idle_s = 7200, p.ka_socket = false; // SO_KEEPALIVE, sysctl default
            break;
        case 2:
        case 3:
            p.ka_idle_s = 60, p.ka_socket = true;
            break;
        case 4:
            p.ka_idle_s = 600, p.ka_socket = true; // on, slower than the NAT
            break;
        default:
            p.ka_idle_s = 0, p.ka_socket = false; // never enabled
        }
        return p;
    }

    static void set_v4(std::uint8_t dst[16], const std::uint8_t a[4]) {
        std::memset(dst, 0, 16);
        std::memcpy(dst, a, 4);
    }

    static rw_owner owner(const Proc &p, std::uint32_t how) {
        rw_owner o{};
        o.pid = p.pid;
        o.uid = p.uid;
        o.cgroup_id = 1000 + p.pid;
        std::strncpy(o.comm, p.comm.c_str(), sizeof o.comm - 1);
        o.how = how;
        return o;
    }

    static rw_keepalive ka(const Proc &p) {
        rw_keepalive k{};
        k.enabled = p.ka_idle_s != 0;
        k.idle_s = p.ka_idle_s ? p.ka_idle_s : 7200;
        k.interval_s = 75;
        k.probes = 9;
        k.from_socket = p.ka_socket ? RW_KA_IDLE_SOCKET : 0;
        return k;
    }

    struct End {
        Host *host;
        Proc *proc;
        std::uint8_t laddr[4], raddr[4];
        std::uint16_t lport, rport;
    };

    static rw_endpoints endpoints(const End &e) {
        rw_endpoints ep{};
        set_v4(ep.local_addr, e.laddr);
        set_v4(ep.remote_addr, e.raddr);
        ep.local_port = e.lport;
        ep.remote_port = e.rport;
        ep.family = AF_INET;
        ep.state = 1;
        return ep;
    }

    std::int64_t tick(std::int64_t max_ns = 500'000) {
        now_ += std::int64_t(rng_() % std::uint64_t(max_ns));
        return now_;
    }

    void reset(std::string &out, const End &e, bool sent, std::uint64_t idle_ms, Origin origin,
               const char *kernel_reason) {
        rw_reset r{};
        r.hdr.type = RW_REC_RESET;
        r.ep = endpoints(e);
        r.owner = owner(*e.proc, RW_OWNER_CONNECT);
        r.ka = ka(*e.proc);
        r.tm.idle_ms = std::uint32_t(idle_ms);
        r.tm.since_send_ms = 0;
        r.tm.age_ms = idle_ms + rng_() % 600'000;
        r.tm.netns = e.proc->netns;
        r.sock_id = rng_();
        r.flags = RW_F_FULLSOCK | RW_F_TIMERS | RW_F_AGE_KNOWN | RW_F_ESTABLISHED;
        r.direction = sent ? RW_DIR_SENT : RW_DIR_RECEIVED;
        Diagnosis dx = diagnose_reset(r, kernel_reason, cfg_);
        ResetEvent ev{r, tick(), kernel_reason, dx, origin, &e.proc->cg};
        e.host->fmt->reset(out, ev);
        ++e.host->resets;
    }

    void closed(std::string &out, const End &e, std::uint64_t age_ms) {
        rw_close c{};
        c.hdr.type = RW_REC_CLOSE;
        c.ep = endpoints(e);
        c.ep.state = 7;
        c.owner = owner(*e.proc, RW_OWNER_CONNECT);
        c.ka = ka(*e.proc);
        c.tm.age_ms = age_ms;
        c.tm.netns = e.proc->netns;
        c.flags = RW_F_AGE_KNOWN | RW_F_ESTABLISHED | (e.proc->ka_idle_s ? RW_F_KA_EVER : 0);
        c.opts = e.proc->ka_idle_s
                     ? (RW_OPT_SO_KEEPALIVE | (e.proc->ka_socket ? RW_OPT_TCP_KEEPIDLE : 0))
                     : 0;
        ClosedEvent ev{c, tick(), &e.proc->cg};
        e.host->fmt->connection_closed(out, ev);
        ++e.host->conns;
    }

    void timeout(std::string &out, const End &e, std::uint64_t idle_ms) {
        rw_close c{};
        c.hdr.type = RW_REC_CLOSE;
        c.ep = endpoints(e);
        c.owner = owner(*e.proc, RW_OWNER_CONNECT);
        c.ka = ka(*e.proc);
        c.tm.idle_ms = std::uint32_t(idle_ms);
        c.tm.age_ms = idle_ms + 900'000;
        c.tm.netns = e.proc->netns;
        c.flags = RW_F_AGE_KNOWN | RW_F_ESTABLISHED;
        c.sk_err = 110;
        c.retransmits = 15;
        c.unanswered_ms = 924'600;
        c.cause = RW_CAUSE_RETRANSMIT;
        Diagnosis dx = diagnose_timeout(c, cfg_);
        TimeoutEvent ev{c, tick(), dx, &e.proc->cg};
        e.host->fmt->timeout(out, ev);
        ++e.host->timeouts;
    }

    void keepalive_set(std::string &out, const End &e, int optname, int level, int value) {
        rw_sockopt s{};
        s.hdr.type = RW_REC_SOCKOPT;
        s.ep = endpoints(e);
        s.owner = owner(*e.proc, RW_OWNER_CURRENT);
        s.sock_id = rng_();
        s.fd = 10 + int(rng_() % 200);
        s.level = level;
        s.optname = optname;
        s.value = value;
        s.netns = e.proc->netns;
        KeepaliveSetEvent ev{s, tick(), &e.proc->cg};
        e.host->fmt->keepalive_set(out, ev);
    }

    void audit(std::string &out, const End &e, std::uint64_t idle_ms) {
        AuditSocket a{};
        a.rec.hdr.type = RW_REC_SNAPSHOT;
        a.rec.ep = endpoints(e);
        a.rec.owner = owner(*e.proc, RW_OWNER_SEEDED);
        a.rec.ka = ka(*e.proc);
        a.rec.tm.idle_ms = std::uint32_t(idle_ms);
        a.rec.tm.since_send_ms = std::uint32_t(idle_ms);
        a.rec.tm.age_ms = idle_ms + 1000;
        a.rec.tm.netns = e.proc->netns;
        a.rec.fd = 10 + int(rng_() % 200);
        a.rec.flags = RW_F_AGE_KNOWN | RW_F_ESTABLISHED;
        a.ts_ns = tick();
        a.cgroup = &e.proc->cg;
        a.shared = false;
        e.host->fmt->audit_socket(out, a);
    }

    void closed_port_reset(std::string &out) {
        Host &h = hosts_[rng_() % hosts_.size()];
        rw_reset r{};
        r.hdr.type = RW_REC_RESET;
        set_v4(r.ep.local_addr, h.addr);
        std::uint8_t scanner[4] = {std::uint8_t(45 + rng_() % 100), std::uint8_t(rng_()),
                                   std::uint8_t(rng_()), std::uint8_t(rng_())};
        set_v4(r.ep.remote_addr, scanner);
        r.ep.local_port = std::uint16_t(1 + rng_() % 65535);
        r.ep.remote_port = std::uint16_t(1024 + rng_() % 60000);
        r.ep.family = AF_INET;
        r.ep.state = 7;
        r.tm.netns = 4026531840u;
        r.flags = RW_F_NO_SOCKET;
        r.direction = RW_DIR_SENT;
        Diagnosis dx = diagnose_reset(r, "NO_SOCKET", cfg_);
        ResetEvent ev{r, tick(), "NO_SOCKET", dx, Origin::local, nullptr};
        h.fmt->reset(out, ev);
        ++h.resets;
    }

    void summaries(std::string &out) {
        Host &h = hosts_[rng_() % hosts_.size()];
        const std::int64_t ts = tick();
        for (const Proc &p : h.procs) {
            ProcessSummary s;
            s.pid = p.pid;
            s.comm = p.comm;
            s.uid = p.uid;
            s.connections = h.conns / h.procs.size() + rng_() % 50;
            s.open_connections = rng_() % 40;
            s.without_keepalive = p.ka_idle_s ? 0 : s.connections;
            s.resets_received = h.resets / h.procs.size();
            s.timeouts = h.timeouts / h.procs.size();
            s.keepalive_options = p.ka_idle_s ? RW_OPT_SO_KEEPALIVE : 0;
            s.cgroup = &p.cg;
            h.fmt->process_summary(out, ts, s);
        }
        SessionSummary ss{};
        ss.ts_ns = ts;
        ss.duration_ms = 3'600'000;
        ss.end_reason = "signal";
        ss.emitted = h.resets + h.timeouts + h.conns;
        ss.resets = h.resets;
        ss.timeouts = h.timeouts;
        h.fmt->session_summary(out, ss);
        SessionStart st{};
        st.ts_ns = tick();
        st.version = "0.1.0";
        st.kernel = "6.18.0-cloud-amd64";
        st.pid = 700 + std::uint32_t(rng_() % 1000);
        st.events = {"reset", "timeout", "keepalive", "connection", "summary"};
        st.setsockopt_hook = "cgroup";
        st.kernel_reason_available = true;
        st.hz = 250;
        st.ringbuf_bytes = 8u << 20;
        st.seeded_sockets = rng_() % 500;
        st.startup_ms = 180;
        h.fmt->session_start(out, st);
        h.resets = h.timeouts = h.conns = 0;
    }

    void lost(std::string &out) {
        Host &h = hosts_[rng_() % hosts_.size()];
        LostEvent l{};
        l.ts_ns = tick();
        l.reason = "ringbuf_full";
        l.lost = 1 + rng_() % 100;
        l.total = l.lost + rng_() % 1000;
        l.by_type = {l.lost, 0, 0, 0};
        h.fmt->lost(out, l);
    }

    void connection(std::string &out) {
        Host *ch;
        do
            ch = &hosts_[rng_() % hosts_.size()];
        while (!ch->client);
        Proc *cp = &ch->procs[rng_() % ch->procs.size()];
        Host *sh = nullptr;
        Proc *sp = nullptr;
        std::uint8_t saddr[4];
        std::uint16_t sport;
        if (rng_() % 4 != 0) { // inside the fleet: both ends are logged
            do
                sh = &hosts_[rng_() % hosts_.size()];
            while (!sh->server);
            sp = &sh->procs[0];
            std::memcpy(saddr, sh->addr, 4);
            sport = sp->listen_port;
        } else { // an external service
            saddr[0] = 52;
            saddr[1] = std::uint8_t(rng_() % 255);
            saddr[2] = std::uint8_t(rng_() % 255);
            saddr[3] = std::uint8_t(rng_() % 255);
            sport = 443;
        }
        End c{ch, cp, {}, {}, ch->next_port, sport};
        std::memcpy(c.laddr, ch->addr, 4);
        std::memcpy(c.raddr, saddr, 4);
        ch->next_port = ch->next_port >= 60999 ? 32768 : std::uint16_t(ch->next_port + 1);
        End s{sh, sp, {}, {}, sport, c.lport};
        if (sh) {
            std::memcpy(s.laddr, saddr, 4);
            std::memcpy(s.raddr, ch->addr, 4);
        }

        if (cp->ka_idle_s) {
            keepalive_set(out, c, SO_KEEPALIVE, SOL_SOCKET, 1);
            if (cp->ka_socket) keepalive_set(out, c, 4 /* TCP_KEEPIDLE */, 6, int(cp->ka_idle_s));
        }
        const unsigned outcome = unsigned(rng_() % 100);
        // Behind the NAT (350 s, RST on expiry): a connection idle longer than
        // that whose keepalive is off or slower dies on its next write.
        const bool ka_saves = cp->ka_idle_s && cp->ka_idle_s < 350;
        if (outcome < 12 && !ka_saves) {
            std::uint64_t idle = 350'000 + rng_() % 1'800'000;
            reset(out, c, false, idle, Origin::unknown, "");
            if (sh && rng_() % 2) closed(out, s, idle + 5000); // else stays half-open
            return;
        }
        if (outcome < 15 && !ka_saves) {
            timeout(out, c, 350'000 + rng_() % 900'000);
            if (sh) audit(out, s, 1'300'000); // the server's half-open end
            return;
        }
        if (outcome < 22 && sh) { // the server aborts (SO_LINGER 0): not idle
            std::uint64_t idle = rng_() % 2000;
            reset(out, s, true, idle, Origin::local, "TCP_ABORT_ON_CLOSE");
            reset(out, c, false, idle, Origin::unknown, "");
            return;
        }
        if (outcome < 32) { // still open at an audit
            std::uint64_t idle = rng_() % 600'000;
            audit(out, c, idle);
            if (sh) audit(out, s, idle);
            return;
        }
        const std::uint64_t age = rng_() % 3'600'000;
        closed(out, c, age);
        if (sh) closed(out, s, age);
    }

    std::mt19937_64 rng_;
    std::vector<Host> hosts_;
    DiagnoseConfig cfg_ = DiagnoseConfig::make(std::nullopt, std::nullopt);
    std::int64_t now_ = 1'767'225'600'000'000'000; // 2026-01-01T00:00:00Z
};

[[noreturn]] void usage() {
    std::fprintf(
        stderr, "usage: rw_report_gen (--size SIZE | --lines N) [--hosts N] [--procs N] [--seed N] "
                "[-o FILE]\n");
    std::exit(2);
}

} // namespace

int main(int argc, char **argv) {
    std::uint64_t size = 0, lines = 0, seed = 1;
    unsigned hosts = 40, procs = 0; // procs per host; 0: 3-6
    std::string path;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (a == "--size") {
            auto s = parse_size(next());
            if (!s) usage();
            size = *s;
        } else if (a == "--lines") {
            lines = std::stoull(next());
        } else if (a == "--hosts") {
            hosts = unsigned(std::stoul(next()));
        } else if (a == "--procs") {
            procs = unsigned(std::stoul(next()));
        } else if (a == "--seed") {
            seed = std::stoull(next());
        } else if (a == "-o" || a == "--output") {
            path = next();
        } else {
            usage();
        }
    }
    if ((!size && !lines) || hosts < 2) usage();
    FILE *f = path.empty() ? stdout : std::fopen(path.c_str(), "w");
    if (!f) {
        std::perror(path.c_str());
        return 1;
    }
    Gen gen(hosts, procs, seed);
    std::string buf;
    std::uint64_t written = 0, nlines = 0;
    while ((size && written < size) || (lines && nlines < lines)) {
        gen.step(buf);
        // Count lines; trim the last step to hit --lines exactly.
        std::size_t pos = 0;
        while (pos < buf.size()) {
            std::size_t nl = buf.find('\n', pos);
            ++nlines;
            pos = nl + 1;
            if (lines && nlines == lines) {
                buf.resize(pos);
                break;
            }
        }
        written += buf.size();
        if (std::fwrite(buf.data(), 1, buf.size(), f) != buf.size()) {
            std::perror("write");
            return 1;
        }
        buf.clear();
    }
    if (f != stdout) std::fclose(f);
    std::fprintf(stderr, "rw_report_gen: %llu lines, %llu bytes, %u hosts, seed %llu\n",
                 (unsigned long long)nlines, (unsigned long long)written, hosts,
                 (unsigned long long)seed);
    return 0;
}
