#!/usr/bin/python3
"""deploy/kubernetes/daemonset.yaml, validated offline (no cluster here): it
parses into the expected objects and every field docs/deploy.md relies on is
there: host PID namespace but not the host network, capabilities instead of
privileged, the host cgroup v2 mount, resources, the metrics port and its
Prometheus annotations, and a config that rstwatch itself accepts.

    daemonset_test.py SOURCE_DIR RSTWATCH_BINARY
"""
import os
import subprocess
import sys
import tempfile

import yaml  # python3-yaml (Debian), run with /usr/bin/python3

src, rstwatch = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


with open(os.path.join(src, "deploy/kubernetes/daemonset.yaml")) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
kinds = {d["kind"]: d for d in docs}
check(sorted(kinds) == ["ConfigMap", "DaemonSet", "Namespace"], f"objects: {sorted(kinds)}")
ds, cm = kinds["DaemonSet"], kinds["ConfigMap"]
check(ds["apiVersion"] == "apps/v1", "DaemonSet is apps/v1")
check(ds["metadata"]["namespace"] == cm["metadata"]["namespace"] == kinds["Namespace"]["metadata"]["name"],
      "everything in one namespace")
sel = ds["spec"]["selector"]["matchLabels"]
tmpl = ds["spec"]["template"]
check(all(tmpl["metadata"]["labels"].get(k) == v for k, v in sel.items()), "selector matches the pod labels")

pod = tmpl["spec"]
check(pod.get("hostPID") is True, "hostPID: the task iterator walks the reader's pid namespace")
check(pod.get("hostNetwork", False) is False, "no hostNetwork: BPF sees every netns")
check(pod.get("hostIPC", False) is False, "no hostIPC")
check(pod.get("automountServiceAccountToken") is False, "no API token (the agent never calls the API)")

(c,) = pod["containers"]
sc = c["securityContext"]
check(sc.get("privileged") is False, "not privileged")
check(sc.get("allowPrivilegeEscalation") is False, "no privilege escalation")
check(sc.get("readOnlyRootFilesystem") is True, "read-only root file system")
check(sc["capabilities"]["drop"] == ["ALL"], "drops every capability")
check(sorted(sc["capabilities"]["add"]) == ["BPF", "NET_ADMIN", "PERFMON"],
      "adds exactly BPF, PERFMON, NET_ADMIN (docs/security.md)")
check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")

res = c["resources"]
for kind in ("requests", "limits"):
    check({"cpu", "memory"} <= set(res.get(kind, {})), f"resources.{kind} has cpu and memory")

ports = {p["name"]: p for p in c["ports"]}
ann = tmpl["metadata"]["annotations"]
check(ann.get("prometheus.io/scrape") == "true", "prometheus.io/scrape")
check(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path")
check(ann.get("prometheus.io/port") == str(ports["metrics"]["containerPort"]),
      "prometheus.io/port is the metrics port")

mounts = {m["name"]: m for m in c["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
check(set(mounts) == set(vols), "every volume is mounted")
check(vols["cgroup"]["hostPath"]["path"] == "/sys/fs/cgroup" and mounts["cgroup"]["mountPath"] == "/sys/fs/cgroup"
      and mounts["cgroup"].get("readOnly") is True, "host cgroup v2 hierarchy, read-only")
check(vols["logs"]["hostPath"]["path"] == "/var/log/rstwatch", "events land in the node's /var/log/rstwatch")
check(all(m.get("readOnly") for n, m in mounts.items() if n != "logs"), "only the log directory is writable")
check("bpffs" not in vols and not any("/sys/fs/bpf" in m["mountPath"] for m in mounts.values()),
      "no bpffs: rstwatch pins nothing")

# The ConfigMap is a config rstwatch accepts (its own parser, through
# --check-config, which loads nothing), with the paths the pod mounts.
conf = cm["data"]["rstwatch.conf"]
args = c["args"]
check(args[:1] == ["trace"] and "--config" in args, "runs `trace --config`")
cfg_path = args[args.index("--config") + 1]
check(os.path.dirname(cfg_path) == mounts["config"]["mountPath"], "config file is in the mounted ConfigMap")
settings = dict(l.split("=", 1) for l in conf.splitlines() if "=" in l and not l.lstrip().startswith("#"))
settings = {k.strip(): v.strip() for k, v in settings.items()}
check(settings["metrics-listen"].endswith(":" + str(ports["metrics"]["containerPort"])),
      "metrics-listen uses the container port")
check(os.path.dirname(settings["output"]) == mounts["logs"]["mountPath"], "output goes to the logs mount")
with tempfile.TemporaryDirectory() as d:
    logs = os.path.join(d, "logs")
    os.mkdir(logs)
    path = os.path.join(d, "rstwatch.conf")
    with open(path, "w") as f:
        f.write(conf.replace(mounts["logs"]["mountPath"], logs))
    os.chmod(path, 0o600)
    r = subprocess.run([rstwatch, "trace", "--config", path, "--check-config"], capture_output=True, text=True)
    check(r.returncode == 0, f"rstwatch parses the ConfigMap's config (exit {r.returncode}) {r.stderr.strip()}")
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write(conf + "no-such-flag = 1\n")
    r = subprocess.run([rstwatch, "trace", "--config", bad, "--check-config"], capture_output=True, text=True)
    check(r.returncode == 2 and "unknown key 'no-such-flag'" in r.stderr, "and rejects a bad one (control)")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
