#!/usr/bin/python3
"""rstwatch benchmarks, side by side with bpftrace and libbpf-tools.

Runs every configuration of a section several times, interleaved
(A B C, B C A, C A B, ...), and prints Markdown tables with the median and the
min-max of the repetitions. docs/PERFORMANCE.md explains each table.

Sections:
  storm     loss and tracer CPU under an RST storm (rw_rst_load), BPF cost per
            program run, memory of each tracer idle and after the storm
  overhead  cost to the traced system (rw_syscall_cost) under each tracer and
            each rstwatch setsockopt hook
  startup   exec -> ready for rstwatch, bpftrace and libbpf-tools tcpstates
  encoder   rw_encoder_bench (Google Benchmark), events/s on one core
  audit     `rstwatch audit` over 1,000 / 10,000 / 50,000 loopback connections

Needs root (BPF, private network namespaces), bpftrace and libbpf-tools.
Everything it starts is bounded in time and stopped by pid. Run it through
bench/run.sh, which builds first.
"""
import argparse
import ctypes
import json
import os
import pty
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
SKIP = 77  # ctest SKIP_RETURN_CODE

# --------------------------------------------------------------------------
# small utilities


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def rotate(items, k):
    k %= len(items)
    return items[k:] + items[:k]


def cpu_seconds(pid):
    """user+sys of a whole process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_status_kb(pid, *keys):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def bpf_ids(pid, kind):
    """Ids of the BPF objects (kind: prog_id or map_id) a process holds fds to."""
    ids = set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                m = re.search(rf"^{kind}:\s*(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


def bpftool_json(*args):
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []


def prog_stats(pid):
    """{name: (run_cnt, run_time_ns)} for the programs a process holds."""
    ids = bpf_ids(pid, "prog_id")
    out = {}
    for p in bpftool_json("prog", "show"):
        if p.get("id") in ids:
            name = p.get("name", str(p["id"]))
            c, t = out.get(name, (0, 0))
            out[name] = (c + p.get("run_cnt", 0), t + p.get("run_time_ns", 0))
    return out


def map_memlock(pid):
    ids = bpf_ids(pid, "map_id")
    return sum(m.get("bytes_memlock", 0) for m in bpftool_json("map", "show") if m.get("id") in ids)


class BpfStats:
    """Keeps kernel.bpf_stats_enabled on while held (BPF_ENABLE_STATS: the
    kernel turns it off again when the fd closes, even if we crash)."""

    def __init__(self):
        self.fd = -1

    def __enter__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.c_uint32(0)  # BPF_STATS_RUN_TIME
        self.fd = libc.syscall(321, 32, ctypes.byref(attr), 4)  # bpf(BPF_ENABLE_STATS)
        return self

    def __exit__(self, *a):
        if self.fd >= 0:
            os.close(self.fd)


def sysctl(name):
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return "?"


def med_range(values, fmt="{:.0f}"):
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def md_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# tracers


class Tracer:
    """One tracer process writing to a file, stopped with SIGINT by pid."""

    SPECS = {
        "rstwatch": ("rw", []),
        "rstwatch-ka": ("rw", ["--events", "reset,timeout,keepalive,summary"]),
        "bpftrace-min": ("bt", ["resets-min.bt"]),
        "bpftrace": ("bt", ["resets.bt"]),
        "bpftrace-ka": ("bt", ["resets.bt", "setsockopt.bt"]),
    }

    def __init__(self, name, ctx, tag):
        self.name = name
        self.kind, extra = self.SPECS[name]
        self.out = os.path.join(ctx.outdir, f"{tag}.out")
        self.err_path = os.path.join(ctx.outdir, f"{tag}.err")
        err = open(self.err_path, "w")
        if self.kind == "rw":
            cmd = [ctx.rstwatch, "trace", "--output", self.out, *extra]
            stdout = subprocess.DEVNULL
        else:
            script = os.path.join(ctx.outdir, f"{name}.bt")
            with open(script, "w") as f:
                for part in extra:
                    with open(os.path.join(HERE, part)) as p:
                        f.write(p.read() + "\n")
            cmd = ["bpftrace", "-f", "json", script]
            stdout = open(self.out, "w")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=err, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.ready_s = None

    def wait_ready(self, timeout=180):
        marker = b'"event":"session_start"' if self.kind == "rw" else b'"attached_probes"'
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): "
                                   + open(self.err_path).read()[-2000:])
            try:
                with open(self.out, "rb") as f:
                    if marker in f.read(4096):
                        self.ready_s = time.monotonic() - self.t0
                        return
            except FileNotFoundError:
                pass
            time.sleep(0.002)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s")

    def wait_drained(self, quiet=0.5, timeout=60):
        """Until the output file has not grown for `quiet` seconds."""
        end = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < end:
            size = os.path.getsize(self.out)
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.05)

    def stop(self):
        # SIGINT, repeated: bpftrace 0.17 loses one sent right after it says
        # it is attached. rstwatch drains its ring buffer on the first.
        end = time.monotonic() + 60
        while self.proc.poll() is None and time.monotonic() < end:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            log(f"{self.name} ignored SIGINT for 60 s: killed")
            self.proc.kill()
            self.proc.wait()


def count_events(tracer, load):
    """(ours, total, lost_reported): reset events of this load (its private
    netns and port) and of everything else on the host."""
    port, netns = load["port"], load["netns"]
    ours = total = lost = 0
    with open(tracer.out, "r", errors="replace") as f:
        if tracer.kind == "rw":
            pn, nn = f'"port":{port}}}', f'"netns":{netns},'
            for line in f:
                if '"event":"tcp_reset"' in line:
                    total += 1
                    if pn in line and nn in line:
                        ours += 1
                elif '"event":"session_summary"' in line:
                    lost = json.loads(line).get("lost", 0)
        elif tracer.name == "bpftrace-min":
            p = str(port)
            for line in f:
                if '"printf"' in line:
                    total += 1
                    fields = json.loads(line)["data"].split()
                    if len(fields) >= 3 and p in fields[1:3]:
                        ours += 1
                elif '"lost_events"' in line:
                    lost += json.loads(line)["data"]["events"]
        else:
            pn, nn = f":{port} ", f"netns={netns} "
            for line in f:
                if '"dir=' in line:
                    total += 1
                    if pn in line and nn in line:
                        ours += 1
                elif '"lost_events"' in line:
                    lost += json.loads(line)["data"]["events"]
    return ours, total, lost


# --------------------------------------------------------------------------
# sections


class Ctx:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build_dir)
        self.rstwatch = os.path.join(self.build, "rstwatch")
        self.bin = lambda n: os.path.join(self.build, "bench", n)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.outdir = os.path.abspath(args.out or os.path.join(self.build, "bench-results", stamp))
        os.makedirs(self.outdir, exist_ok=True)
        self.results = {"meta": {}, "sections": {}}
        self.tables = []
        self.failures = []

    def emit(self, title, text):
        block = f"### {title}\n\n{text}\n"
        self.tables.append(block)
        print(block, flush=True)


def run_load(ctx, mode, rate, count, duration):
    cmd = [ctx.bin("rw_rst_load"), "--mode", mode, "--rate", str(rate), "--count", str(count),
           "--duration", str(duration), "--netns", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if not r.stdout.strip():
        raise RuntimeError("rw_rst_load failed: " + r.stderr)
    load = json.loads(r.stdout)
    if not load.get("kernel_agrees"):
        # Private netns: Tcp.OutRsts and TCPAbortOn* must equal its own count.
        ctx.failures.append(f"rw_rst_load {mode}@{rate}: kernel counters disagree: "
                            f"{load['resets']} resets, {load['kernel']}")
    return load


def storm_section(ctx):
    a = ctx.args
    configs = ["none", "rstwatch", "bpftrace-min", "bpftrace"]
    cases = [("closed", 0), ("abort", 0), ("closed", a.storm_rate)]
    runs = []
    la0 = loadavg()
    with BpfStats():
        for ci, (mode, rate) in enumerate(cases):
            for rep in range(a.reps):
                for cfg in rotate(configs, rep + ci):
                    tag = f"storm-{mode}-{rate}-{cfg}-{rep}"
                    log(f"{tag} (load {loadavg()})")
                    row = {"mode": mode, "rate_target": rate, "config": cfg, "rep": rep}
                    tr = None
                    if cfg != "none":
                        tr = Tracer(cfg, ctx, tag)
                        tr.wait_ready()
                        time.sleep(0.5)
                        row["idle"] = {**proc_status_kb(tr.pid, "VmRSS", "VmHWM"),
                                       "map_bytes": map_memlock(tr.pid)}
                        cpu0, ps0 = cpu_seconds(tr.pid), prog_stats(tr.pid)
                    load = run_load(ctx, mode, rate, a.storm_count, a.storm_duration)
                    row["load"] = load
                    if tr:
                        tr.wait_drained()
                        row["cpu_s"] = cpu_seconds(tr.pid) - cpu0
                        ps1 = prog_stats(tr.pid)
                        row["progs"] = {n: (ps1[n][0] - ps0.get(n, (0, 0))[0],
                                            ps1[n][1] - ps0.get(n, (0, 0))[1]) for n in ps1}
                        row["after"] = {**proc_status_kb(tr.pid, "VmRSS", "VmHWM"),
                                        "map_bytes": map_memlock(tr.pid)}
                        tr.stop()
                        row["ours"], row["total"], row["lost_reported"] = count_events(tr, load)
                        if not a.keep_outputs:
                            os.unlink(tr.out)
                    runs.append(row)
    ctx.results["sections"]["storm"] = runs
    la1 = loadavg()

    base, base_cpu = {}, {}
    for mode, rate in cases:
        none = [r for r in runs if r["config"] == "none" and r["mode"] == mode
                and r["rate_target"] == rate]
        base[(mode, rate)] = median(r["load"]["rate"] for r in none)
        base_cpu[(mode, rate)] = median(r["load"]["cpu_us_per_op"] for r in none)
    rows = []
    for mode, rate in cases:
        for cfg in configs:
            rs = [r for r in runs if r["config"] == cfg and r["mode"] == mode
                  and r["rate_target"] == rate]
            if not rs:
                continue
            gen = [r["load"]["resets"] for r in rs]
            kern = [r["load"]["kernel"].get("Tcp.OutRsts") for r in rs]
            rate_v = [r["load"]["rate"] for r in rs]
            pct = [100 * v / base[(mode, rate)] if base[(mode, rate)] else None for v in rate_v]
            gcpu = [r["load"]["cpu_us_per_op"] for r in rs]
            gpct = [100 * base_cpu[(mode, rate)] / v if v else None for v in gcpu]
            storm = f"{mode} @ {'max' if not rate else f'{rate}/s'}"
            if cfg == "none":
                rows.append([storm, cfg, med_range(gen), med_range(kern), med_range(rate_v),
                             med_range(pct), med_range(gcpu, "{:.1f}"), med_range(gpct),
                             "—", "—", "—", "—", "—"])
                continue
            exp = [2 * r["load"]["resets"] if cfg != "bpftrace-min" else r["load"]["resets"]
                   for r in rs]
            ours = [r["ours"] for r in rs]
            lost = [100 * max(0, e - o) / e if e else 0 for e, o in zip(exp, ours)]
            cpu = [r["cpu_s"] for r in rs]
            per100k = [100000 * r["cpu_s"] / r["total"] if r["total"] else None for r in rs]
            per100k_rst = [100000 * r["cpu_s"] / r["load"]["resets"] if r["load"]["resets"]
                           else None for r in rs]
            rows.append([storm, cfg, med_range(gen), med_range(kern), med_range(rate_v),
                         med_range(pct), med_range(gcpu, "{:.1f}"), med_range(gpct),
                         f"{med_range(ours)} of {med_range(exp)}", med_range(lost, "{:.2f}"),
                         med_range(cpu, "{:.2f}"), med_range(per100k, "{:.3f}"),
                         med_range(per100k_rst, "{:.3f}")])
            if cfg == "rstwatch" and any(o < e for o, e in zip(ours, exp)):
                ctx.failures.append(f"storm {mode}@{rate}: rstwatch lost events {ours} of {exp}")
    ctx.emit(f"Loss and CPU under an RST storm (load average {la0} -> {la1})", md_table(
        ["storm", "tracer", "resets generated", "kernel OutRsts", "resets/s",
         "% of untraced rate", "generator CPU µs per reset", "% of untraced (CPU)",
         "events received (ours) of expected", "lost %",
         "tracer CPU s", "CPU s per 100k events", "CPU s per 100k resets"], rows))

    # Kernel side: what each program costs per run and per reset (robust to
    # machine load: the kernel times each run).
    prow = []
    for cfg in configs[1:]:
        for mode in ("closed", "abort"):
            rs = [r for r in runs if r["config"] == cfg and r["mode"] == mode
                  and r["rate_target"] == 0 and r["load"]["resets"]]
            names = sorted({n for r in rs for n, (c, _) in r.get("progs", {}).items() if c})
            for n in names:
                have = [r for r in rs if r["progs"].get(n, (0, 0))[0]]
                prow.append([cfg, mode, n,
                             med_range([r["progs"][n][0] / r["load"]["resets"] for r in have],
                                       "{:.2f}"),
                             med_range([r["progs"][n][1] / r["progs"][n][0] for r in have])])
            per = [sum(t for _, t in r["progs"].values()) / r["load"]["resets"] for r in rs]
            if per:
                prow.append([cfg, mode, "**all programs**", "", f"**{med_range(per)}** per reset"])
    ctx.emit("BPF programs during the max-rate storms (kernel.bpf_stats_enabled)", md_table(
        ["tracer", "storm", "program", "runs per reset", "ns per run"], prow))

    mrows = []
    for cfg in configs[1:]:
        rs = [r for r in runs if r["config"] == cfg and "idle" in r]
        if not rs:
            continue
        mb = lambda kb: kb / 1024
        mrows.append([cfg,
                      med_range([mb(r["idle"]["VmRSS"]) for r in rs], "{:.1f}"),
                      med_range([mb(r["after"]["VmRSS"]) for r in rs], "{:.1f}"),
                      med_range([mb(r["after"]["VmHWM"]) for r in rs], "{:.1f}"),
                      med_range([r["idle"]["map_bytes"] / 2**20 for r in rs], "{:.2f}"),
                      med_range([r["after"]["map_bytes"] / 2**20 for r in rs], "{:.2f}")])
    ctx.emit("Memory of each tracer (MiB), idle and after the storm", md_table(
        ["tracer", "RSS idle", "RSS after storm", "VmHWM", "BPF maps idle (bytes_memlock)",
         "BPF maps after"], mrows))


def overhead_section(ctx):
    a = ctx.args
    configs = ["none", "rstwatch", "rstwatch-ka", "bpftrace", "bpftrace-ka"]
    runs = []
    la0 = loadavg()
    for rep in range(a.reps):
        for cfg in rotate(configs, rep):
            tag = f"overhead-{cfg}-{rep}"
            log(f"{tag} (load {loadavg()})")
            tr, ps0, progs = None, {}, {}
            if cfg != "none":
                tr = Tracer(cfg, ctx, tag)
                tr.wait_ready()
                time.sleep(0.3)
                ps0 = prog_stats(tr.pid)
            r = subprocess.run([ctx.bin("rw_syscall_cost"), "--duration",
                                str(a.overhead_duration), "--netns", "1"],
                               capture_output=True, text=True, timeout=120)
            if tr:
                ps1 = prog_stats(tr.pid)
                progs = {n: (ps1[n][0] - ps0.get(n, (0, 0))[0], ps1[n][1] - ps0.get(n, (0, 0))[1])
                         for n in ps1}
                tr.stop()
                if not a.keep_outputs:
                    os.unlink(tr.out)
            if not r.stdout.strip():
                raise RuntimeError("rw_syscall_cost failed: " + r.stderr)
            runs.append({"config": cfg, "rep": rep, "cost": json.loads(r.stdout), "progs": progs})
    ctx.results["sections"]["overhead"] = runs
    la1 = loadavg()

    def vals(cfg, metric, key):
        return [r["cost"][metric][key] for r in runs if r["config"] == cfg]

    metrics = ("getppid", "setsockopt_keepalive", "connect_closed_port", "connect_accept_close")
    base = {m: median(vals("none", m, "cpu_median_ns")) for m in metrics}
    basemin = {m: median(vals("none", m, "min_ns")) for m in metrics}
    rows = []
    for cfg in configs:
        row = [cfg]
        for m in ("getppid", "setsockopt_keepalive"):
            cpu, mn = vals(cfg, m, "cpu_median_ns"), vals(cfg, m, "min_ns")
            row += [med_range(cpu), med_range(mn),
                    f"{median(cpu) - base[m]:+.0f} / {median(mn) - basemin[m]:+.0f}"]
        rows.append(row)
    ctx.emit(f"Overhead on the traced system: per call (load average {la0} -> {la1})", md_table(
        ["tracer", "getppid CPU ns (median batch)", "getppid wall ns (fastest batch)",
         "getppid Δ ns vs none (CPU / fastest)", "setsockopt(SO_KEEPALIVE) CPU ns",
         "setsockopt wall ns (fastest batch)", "setsockopt Δ ns vs none (CPU / fastest)"], rows))

    rows = []
    for cfg in configs:
        row = [cfg]
        for m in ("connect_closed_port", "connect_accept_close"):
            wall = [1e9 / v for v in vals(cfg, m, "mean_ns")]
            bwall = 1e9 / median(vals("none", m, "mean_ns"))
            cpu = [1e9 / v for v in vals(cfg, m, "cpu_median_ns")]
            row += [med_range(wall), f"{100 * median(wall) / bwall:.0f} %", med_range(cpu),
                    f"{100 * median(cpu) * base[m] / 1e9:.0f} %"]
        rows.append(row)
    ctx.emit("Overhead on the traced system: connection loops (per second)", md_table(
        ["tracer", "closed-port connects/s (wall)", "vs none", "per CPU-second", "vs none",
         "connect+accept+close/s (wall)", "vs none", "per CPU-second", "vs none"], rows))

    prow = []
    for cfg in configs[1:]:
        rs = [r for r in runs if r["config"] == cfg]
        names = sorted({n for r in rs for n, (c, _) in r["progs"].items() if c})
        for n in names:
            have = [r for r in rs if r["progs"].get(n, (0, 0))[0]]
            prow.append([cfg, n, med_range([r["progs"][n][0] for r in have]),
                         med_range([r["progs"][n][1] / r["progs"][n][0] for r in have])])
    ctx.emit("BPF programs during the overhead runs", md_table(
        ["tracer", "program", "runs", "ns per run"], prow))


def startup_section(ctx):
    a = ctx.args
    kinds = {
        "rstwatch": ([ctx.rstwatch, "trace"], rb'"event":"session_start"'),
        # The first start after a boot: no cached minimal kernel BTF yet, CO-RE
        # searches the kernel's full BTF (bpf/core_btf.hpp).
        "rstwatch, first start after boot (cache off)": (
            [ctx.rstwatch, "trace"], rb'"event":"session_start"', {"RSTWATCH_CACHE_DIR": "off"}),
        "rstwatch --events keepalive": (
            [ctx.rstwatch, "trace", "--events", "reset,timeout,keepalive,summary"],
            rb'"event":"session_start"'),
        "bpftrace (3-field one-liner)": (
            ["bpftrace", "-f", "json", os.path.join(HERE, "resets-min.bt")], rb'"attached_probes"'),
        "bpftrace (same facts as rstwatch)": (
            ["bpftrace", "-f", "json", os.path.join(HERE, "resets.bt")], rb'"attached_probes"'),
        "libbpf-tools tcpstates": (["tcpstates"], rb"SKADDR"),
        "baseline: /bin/echo (spawn + exec floor)": (["/bin/echo", "ready"], rb"ready"),
    }
    names = list(kinds)
    runs = []
    la0 = loadavg()
    for rep in range(a.startup_reps):
        for name in rotate(names, rep):
            cmd, marker, *extra_env = kinds[name]
            env = dict(os.environ, **extra_env[0]) if extra_env else None
            m, s = pty.openpty()  # a terminal: every tool line-buffers its stdout
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdout=s, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, env=env)
            os.close(s)
            buf, ready, cpu = b"", None, None
            end = t0 + 180
            while time.monotonic() < end:
                r, _, _ = select.select([m], [], [], 0.5)
                if r:
                    try:
                        chunk = os.read(m, 65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        break
                    buf += chunk
                    if marker in buf:
                        ready = time.monotonic() - t0
                        try:
                            cpu = cpu_seconds(p.pid)
                        except OSError:
                            cpu = None
                        break
                elif p.poll() is not None:
                    break
            # Stop it, reading the terminal meanwhile (bpftrace prints its maps
            # at exit). bpftrace 0.17 loses a SIGINT that comes right after its
            # attached_probes line (its handler is not installed yet): repeat it.
            stop_end, next_int = time.monotonic() + 20, 0
            while p.poll() is None and time.monotonic() < stop_end:
                if time.monotonic() >= next_int:
                    p.send_signal(signal.SIGINT)
                    next_int = time.monotonic() + 0.5
                r, _, _ = select.select([m], [], [], 0.05)
                if r:
                    try:
                        os.read(m, 65536)
                    except OSError:
                        time.sleep(0.05)
            if p.poll() is None:
                log(f"startup: {name} ignored SIGINT for 20 s: killed")
                p.kill()
            p.wait()
            os.close(m)
            own = None
            mm = re.search(rb'"startup_ms":(\d+)', buf)
            if mm:
                own = int(mm.group(1))
            runs.append({"tool": name, "rep": rep, "ready_ms": ready and ready * 1000,
                         "cpu_ms": cpu and cpu * 1000, "own_startup_ms": own})
            if ready is None:
                ctx.failures.append(f"startup: {name} never printed its ready line")
    ctx.results["sections"]["startup"] = runs
    la1 = loadavg()
    rw = median(r["ready_ms"] for r in runs if r["tool"] == "rstwatch")
    rows = []
    for name in names:
        rs = [r for r in runs if r["tool"] == name]
        ms = [r["ready_ms"] for r in rs]
        rows.append([name, med_range(ms, "{:.1f}"), med_range([r["cpu_ms"] for r in rs], "{:.0f}"),
                     med_range([r["own_startup_ms"] for r in rs]),
                     f"{median(ms) / rw:.2f}×" if rw and median(ms) else "—"])
    ctx.emit(f"Start-up: exec to ready (ms; load average {la0} -> {la1})", md_table(
        ["tool", "exec → ready ms", "CPU ms to ready", "rstwatch's own startup_ms",
         "vs rstwatch"], rows))
    startup_phases(ctx, a.startup_reps)


# Milestones of `rstwatch -v trace` (debug lines carry ms since the process
# started): the phases of its start-up, each from the previous milestone.
STARTUP_PHASES = [
    ("CLI, output, kernel facts; libbpf opens the object", rb"loading object 'trace_bpf'"),
    ("feature probes + libbpf parses the kernel BTF", rb"loading kernel BTF"),
    ("maps created (4 MiB ring buffer, preallocated hashes)", rb"created successfully"),
    ("CO-RE relocation", rb"patched insn"),
    ("verification + JIT of the programs", rb"trace BPF programs loaded"),
    ("attach", rb"trace BPF programs attached"),
    ("seeding socket owners (iter/task_file)", rb"existing sockets seeded"),
]


def startup_phases(ctx, reps):
    """Per phase, ms: the last line matching each milestone (first for the open)."""
    rows = {}
    for mode, env in (("cached minimal BTF", {}), ("first start after boot", {"RSTWATCH_CACHE_DIR": "off"})):
        samples = []
        for _ in range(reps):
            p = subprocess.run([ctx.rstwatch, "-v", "trace", "--duration", "300ms", "--output", "/dev/null"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ, **env),
                               timeout=60)
            marks = {}
            for line in p.stderr.splitlines():
                m = re.match(rb"rstwatch: debug: \[\s*([\d.]+) ms\] (.*)", line)
                if not m:
                    continue
                for i, (_, needle) in enumerate(STARTUP_PHASES):
                    if needle in m.group(2) and (i != 0 or i not in marks):
                        marks[i] = float(m.group(1))
            if len(marks) == len(STARTUP_PHASES):
                samples.append([marks[i] - (marks[i - 1] if i else 0) for i in range(len(marks))] +
                               [marks[len(marks) - 1]])
        rows[mode] = samples
    out = []
    for i, (name, _) in enumerate(STARTUP_PHASES + [("**total, process start → seeded**", b"")]):
        out.append([name] + [med_range([s[i] for s in rows[mode]], "{:.1f}") for mode in rows])
    ctx.results["sections"]["startup_phases"] = rows
    ctx.emit("Start-up phases (wall ms, `rstwatch -v trace`; -v formats ~1,500 libbpf lines)",
             md_table(["phase"] + list(rows), out))


def encoder_section(ctx):
    a = ctx.args
    out = os.path.join(ctx.outdir, "encoder.json")
    la0 = loadavg()
    cmd = [ctx.bin("rw_encoder_bench"), f"--benchmark_min_time={a.encoder_min_time}",
           f"--benchmark_repetitions={a.encoder_reps}", "--benchmark_enable_random_interleaving=true",
           f"--benchmark_out={out}", "--benchmark_out_format=json"]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, timeout=1800)
    with open(out) as f:
        data = json.load(f)
    la1 = loadavg()
    per = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        per.setdefault(b["run_name"], []).append(b)
    ctx.results["sections"]["encoder"] = data["benchmarks"]
    rows = []
    for name, bs in sorted(per.items()):
        eps = [b["items_per_second"] for b in bs]
        ns = [1e9 / v for v in eps]
        rows.append([name.replace("BM_", ""), med_range(ns), med_range([v / 1e6 for v in eps], "{:.2f}"),
                     f"{bs[0].get('bytes_per_event', 0):.0f}"])
    ctx.emit(f"Encoder: decode → enrich → diagnose → format, one core (load average {la0} -> {la1})",
             md_table(["event / format", "CPU ns per event", "M events/s (CPU time)",
                       "bytes per event"], rows))


def audit_section(ctx):
    a = ctx.args
    runs = []
    la0 = loadavg()
    for n in a.audit_sizes:
        log(f"audit: opening {n} connections (load {loadavg()})")
        holder = subprocess.Popen([ctx.bin("rw_conn_hold"), "--connections", str(n), "--hold",
                                   "900"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            line = holder.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError(f"rw_conn_hold {n}: {line!r}")
            pids = set(line.split("pids")[1].split())
            kinds = ["audit", "ss", "trace-startup"]
            for rep in range(a.reps):
                for kind in rotate(kinds, rep):
                    out = os.path.join(ctx.outdir, f"audit-{n}-{kind}-{rep}.out")
                    if kind == "trace-startup":
                        tr = Tracer("rstwatch", ctx, f"audit-{n}-trace-{rep}")
                        tr.wait_ready()
                        with open(tr.out) as f:
                            ss = json.loads(f.readline())
                        tr.stop()
                        runs.append({"n": n, "kind": kind, "rep": rep,
                                     "wall_s": tr.ready_s, "own_ms": ss["startup_ms"],
                                     "seeded": ss["seeded_sockets"]})
                        continue
                    cmd = [ctx.rstwatch, "audit"] if kind == "audit" else ["ss", "-tanpi"]
                    with open(out, "w") as f:
                        t0 = time.monotonic()
                        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.DEVNULL)
                        _, status, ru = os.wait4(p.pid, 0)
                        wall = time.monotonic() - t0
                    p.returncode = os.waitstatus_to_exitcode(status)
                    found = 0
                    if kind == "audit":
                        with open(out) as f:
                            for l in f:
                                if '"event":"audit_socket"' in l and '"rw_conn_hold"' in l:
                                    found += 1
                        if found < 2 * n:
                            ctx.failures.append(f"audit {n}: found {found} of {2 * n} sockets")
                    runs.append({"n": n, "kind": kind, "rep": rep, "wall_s": wall,
                                 "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
                                 "exit": p.returncode, "sockets_found": found})
                    if not a.keep_outputs:
                        os.unlink(out)
        finally:
            holder.stdin.close()
            try:
                holder.wait(timeout=120)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()
    ctx.results["sections"]["audit"] = runs
    la1 = loadavg()
    rows = []
    for n in a.audit_sizes:
        au = [r for r in runs if r["n"] == n and r["kind"] == "audit"]
        ss = [r for r in runs if r["n"] == n and r["kind"] == "ss"]
        ts = [r for r in runs if r["n"] == n and r["kind"] == "trace-startup"]
        rows.append([f"{n:,}", f"{2 * n:,}", med_range([r["sockets_found"] for r in au]),
                     med_range([r["wall_s"] * 1000 for r in au]),
                     med_range([r["sys_s"] * 1000 for r in au]),
                     med_range([r["user_s"] * 1000 for r in au]),
                     med_range([r["wall_s"] * 1000 for r in ss]),
                     med_range([r["sys_s"] * 1000 for r in ss]),
                     med_range([r["own_ms"] for r in ts]),
                     med_range([r["seeded"] for r in ts])])
    ctx.emit(f"Audit scale (ms; load average {la0} -> {la1})", md_table(
        ["connections", "sockets", "audit_socket lines (rw_conn_hold)", "audit wall",
         "audit sys", "audit user", "`ss -tanpi` wall", "`ss` sys",
         "`trace` startup_ms with them open", "seeded_sockets"], rows))


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"))
    ap.add_argument("--out", help="directory for raw results (default BUILD/bench-results/TIME)")
    ap.add_argument("--sections", default="storm,overhead,startup,encoder,audit")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--storm-count", type=int, default=300000)
    ap.add_argument("--storm-duration", type=float, default=8)
    ap.add_argument("--storm-rate", type=int, default=5000, help="the controlled-rate storm")
    ap.add_argument("--overhead-duration", type=float, default=1.0)
    ap.add_argument("--startup-reps", type=int, default=10)
    ap.add_argument("--encoder-min-time", type=float, default=0.5)
    ap.add_argument("--encoder-reps", type=int, default=5)
    ap.add_argument("--audit-sizes", default="1000,10000,50000")
    ap.add_argument("--keep-outputs", action="store_true", help="keep tracer outputs")
    ap.add_argument("--smoke", action="store_true",
                    help="every section once at a few hundred events (the ctest smoke)")
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.startup_reps, a.encoder_reps = 1, 1, 1
        a.storm_count, a.storm_duration, a.storm_rate = 300, 20, 2000
        a.overhead_duration, a.encoder_min_time, a.audit_sizes = 0.02, 0.001, "300"
    a.audit_sizes = [int(x) for x in a.audit_sizes.split(",") if x]

    if os.geteuid() != 0:
        print("SKIP: the benchmarks load BPF programs and create network namespaces: run as root")
        return SKIP
    for tool in ("bpftrace", "tcpstates", "bpftool", "ss"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} not found (scripts/install-deps.sh test installs it)")
            return SKIP
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        print("SKIP: no kernel BTF (/sys/kernel/btf/vmlinux)")
        return SKIP
    if not os.path.isdir("/sys/kernel/tracing/events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"])
    ctx = Ctx(a)
    if "encoder" in a.sections and not os.access(ctx.bin("rw_encoder_bench"), os.X_OK):
        print("note: no rw_encoder_bench (libbenchmark-dev missing?): encoder section skipped")
        a.sections = ",".join(s for s in a.sections.split(",") if s != "encoder")
    for b in (ctx.rstwatch, ctx.bin("rw_rst_load"), ctx.bin("rw_syscall_cost"),
              ctx.bin("rw_conn_hold")):
        if not os.access(b, os.X_OK):
            print(f"{b} is missing: build first (bench/run.sh does)")
            return 2

    def tool_version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "loadavg_start": loadavg(),
        "bpf_stats_enabled_sysctl": sysctl("kernel.bpf_stats_enabled"),
        "rstwatch_commit": tool_version(["git", "-C", SRC, "rev-parse", "--short", "HEAD"]),
        "bpftrace": tool_version(["bpftrace", "--version"]),
        "libbpf-tools": tool_version(["dpkg-query", "-W", "-f", "${Version}", "libbpf-tools"]),
        "argv": sys.argv[1:],
    }
    ctx.results["meta"] = meta
    print(f"rstwatch {meta['rstwatch_commit']} · kernel {meta['kernel']} · {meta['cpus']} CPUs · "
          f"{meta['bpftrace']} · libbpf-tools {meta['libbpf-tools']} · "
          f"kernel.bpf_stats_enabled={meta['bpf_stats_enabled_sysctl']} · "
          f"load average at start {meta['loadavg_start']}\n", flush=True)
    sections = {"storm": storm_section, "overhead": overhead_section,
                "startup": startup_section, "encoder": encoder_section, "audit": audit_section}
    for s in a.sections.split(","):
        log(f"section {s}")
        sections[s](ctx)
        with open(os.path.join(ctx.outdir, "results.json"), "w") as f:
            json.dump(ctx.results, f, indent=1)
    meta["loadavg_end"] = loadavg()
    print(f"load average at end {meta['loadavg_end']}; raw results in {ctx.outdir}")
    with open(os.path.join(ctx.outdir, "results.json"), "w") as f:
        json.dump(ctx.results, f, indent=1)
    with open(os.path.join(ctx.outdir, "tables.md"), "w") as f:
        f.write("\n".join(ctx.tables))
    for fail in ctx.failures:
        print("FAILED:", fail)
    return 1 if ctx.failures else 0


if __name__ == "__main__":
    sys.exit(main())
