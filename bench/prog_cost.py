#!/usr/bin/env python3
"""A/B of rstwatch builds under an RST storm: BPF ns per program run and per
reset (kernel.bpf_stats_enabled), generator rate against no tracer, lost events.

    sudo bench/prog_cost.py --reps 5 --mode abort before=/tmp/rstwatch-old after=build/rstwatch

Configurations run interleaved (none, A, B / A, B, none / ...), as bench/run.py
does; the kernel's per-program run times are the figure the machine's other load
disturbs least. Needs rw_rst_load from BUILD/bench (--build-dir).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (bench/run.py: Tracer, prog_stats, BpfStats, ...)


class Ctx:
    def __init__(self, build, outdir):
        self.build = os.path.abspath(build)
        self.bin = lambda n: os.path.join(self.build, "bench", n)
        self.outdir = outdir
        self.failures = []


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--mode", default="abort", choices=["abort", "closed"])
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--duration", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true", help="skip the untraced runs")
    ap.add_argument("builds", nargs="+", help="NAME=PATH_TO_RSTWATCH")
    a = ap.parse_args()
    outdir = os.path.join(os.path.abspath(a.build_dir), "bench-results",
                          "prog-cost-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    ctx = Ctx(a.build_dir, outdir)
    builds = dict(b.split("=", 1) for b in a.builds)
    configs = ([] if a.no_baseline else ["none"]) + list(builds)
    runs = []
    with R.BpfStats():
        for rep in range(a.reps):
            for cfg in R.rotate(configs, rep):
                row = {"cfg": cfg}
                tr = None
                if cfg != "none":
                    ctx.rstwatch = builds[cfg]
                    tr = R.Tracer("rstwatch", ctx, f"{cfg}-{rep}")
                    tr.wait_ready()
                    time.sleep(0.3)
                    ps0 = R.prog_stats(tr.pid)
                    cpu0 = R.cpu_seconds(tr.pid)
                load = R.run_load(ctx, a.mode, 0, a.count, a.duration)
                row["rate"], row["resets"] = load["rate"], load["resets"]
                if tr:
                    tr.wait_drained()
                    row["cpu_s"] = R.cpu_seconds(tr.pid) - cpu0
                    ps1 = R.prog_stats(tr.pid)
                    row["progs"] = {n: (ps1[n][0] - ps0.get(n, (0, 0))[0],
                                        ps1[n][1] - ps0.get(n, (0, 0))[1]) for n in ps1}
                    row["rss_kb"] = R.proc_status_kb(tr.pid, "VmRSS")["VmRSS"]
                    tr.stop()
                    row["ours"], _, _ = R.count_events(tr, load)
                    os.unlink(tr.out)
                runs.append(row)
                R.log(f"{cfg} rep {rep}: {row.get('rate'):.0f}/s")
    base = R.median(r["rate"] for r in runs if r["cfg"] == "none") if "none" in configs else None
    print(f"\n### {a.mode} storm, {a.count} resets max, {a.reps} reps "
          f"(load average {R.loadavg()})\n")
    rows = []
    for cfg in configs:
        rs = [r for r in runs if r["cfg"] == cfg]
        pct = R.med_range([100 * r["rate"] / base for r in rs]) if base else "—"
        if cfg == "none":
            rows.append([cfg, "", "", R.med_range([r["rate"] for r in rs]), pct, "", "", ""])
            continue
        names = sorted({n for r in rs for n, (c, _) in r["progs"].items() if c})
        for n in names:
            have = [r for r in rs if r["progs"].get(n, (0, 0))[0]]
            rows.append([cfg, n,
                         R.med_range([r["progs"][n][0] / r["resets"] for r in have], "{:.2f}"),
                         "", "", R.med_range([r["progs"][n][1] / r["progs"][n][0] for r in have]),
                         "", ""])
        per = [sum(t for _, t in r["progs"].values()) / r["resets"] for r in rs]
        lost = [2 * r["resets"] - r["ours"] for r in rs]
        rows.append([cfg, "**all**", "", R.med_range([r["rate"] for r in rs]), pct,
                     "", R.med_range(per), R.med_range(lost)])
    print(R.md_table(["build", "program", "runs per reset", "resets/s", "% of untraced",
                      "ns per run", "BPF ns per reset", "lost"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
