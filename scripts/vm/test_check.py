#!/usr/bin/python3
"""Self-test of the kernel matrix's checker (scripts/vm/check.py): the
`rstwatch verify` check must fail on every way a guest's report can be wrong,
and the program list read from the built objects must be libbpf's.

    scripts/vm/test_check.py [build-static/bpf/trace.bpf.o ...]

scripts/vm-matrix.sh runs it with the objects it built before booting any
kernel. Only the Python standard library (and bpftool for the object test).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402

OBJECTS = []

BUILT = {"trace": {"rw_a": "tp_btf/tcp_send_reset", "rw_b": "iter/task_file"},
         "enforce": {"rw_c": "sockops", "rw_d": "iter/tcp"}}


def report(overrides=None, drop=(), extra=(), summary=None):
    """A verify report of every BUILT program loaded, with per-program overrides."""
    lines, n = [], {"loaded": 0, "left_out": 0, "failed": 0}
    for obj, progs in BUILT.items():
        for prog, sec in progs.items():
            if (obj, prog) in drop:
                continue
            e = {"v": 1, "event": "bpf_program", "ts": "t", "host": "h", "object": obj, "program": prog,
                 "section": sec, "essential": prog != "rw_d", "status": "loaded", "lost": None,
                 "reason": None}
            e.update((overrides or {}).get((obj, prog), {}))
            n[e["status"]] = n.get(e["status"], 0) + 1
            lines.append(e)
    lines += list(extra)
    for e in extra:
        n[e["status"]] += 1
    s = {"v": 1, "event": "verify_summary", "ts": "t", "host": "h", "programs": len(lines), **n}
    s.update(summary or {})
    return [json.dumps(e) for e in lines + [s]]


LEFT = {("enforce", "rw_d"): {"status": "left_out", "lost": "enforce --existing",
                              "reason": "R2 type=untrusted_ptr_ expected=ptr_"}}


class VerifyCheck(unittest.TestCase):
    def run_check(self, lines, rc=0, expect="", err=()):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(BUILT, f)
        try:
            c = check.Checks()
            rec = check.check_verify(c, {"verify_rc": [str(rc)]},
                                     {"verify": lines, "verify.err": list(err)},
                                     dict(kv.split("=", 1) for kv in expect.split()), f.name)
        finally:
            os.unlink(f.name)
        return c, rec

    def failed(self, c):
        return [r[1] for r in c.failed()]

    def test_all_loaded_passes(self):
        c, rec = self.run_check(report())
        self.assertEqual(self.failed(c), [])
        self.assertEqual((rec["programs"], rec["loaded"], rec["left_out"]), (4, 4, []))

    def test_left_out_as_the_row_expects_passes_and_is_recorded(self):
        c, rec = self.run_check(report(LEFT), expect="left_out=enforce:rw_d")
        self.assertEqual(self.failed(c), [])
        self.assertEqual(rec["left_out"], [{"object": "enforce", "program": "rw_d", "section": "iter/tcp",
                                            "lost": "enforce --existing",
                                            "reason": "R2 type=untrusted_ptr_ expected=ptr_"}])

    def test_left_out_the_row_does_not_expect_fails(self):
        c, _ = self.run_check(report(LEFT))
        self.assertEqual(self.failed(c), ["left out exactly what the row expects (left_out=)"])

    def test_expected_left_out_that_loads_fails(self):
        c, _ = self.run_check(report(), expect="left_out=enforce:rw_d")
        self.assertEqual(self.failed(c), ["left out exactly what the row expects (left_out=)"])

    def test_left_out_without_reason_fails(self):
        bad = {("enforce", "rw_d"): dict(LEFT[("enforce", "rw_d")], reason=None)}
        c, _ = self.run_check(report(bad), expect="left_out=enforce:rw_d")
        self.assertEqual(self.failed(c), ["every left-out program names what is lost and why"])

    def test_essential_left_out_fails(self):
        c, _ = self.run_check(report({("trace", "rw_a"): LEFT[("enforce", "rw_d")]}),
                              expect="left_out=trace:rw_a")
        self.assertEqual(self.failed(c), ["no essential program left out"])

    def test_failed_program_and_exit_status_fail(self):
        c, _ = self.run_check(report({("trace", "rw_a"): {"status": "failed", "reason": "R1 invalid"}}), rc=1)
        self.assertEqual(self.failed(c), ["rstwatch verify exit status (0: no essential program failed)",
                                          "no program failed (each loads or is left out)"])

    def test_missing_and_extra_programs_fail(self):
        extra = {"v": 1, "event": "bpf_program", "ts": "t", "host": "h", "object": "trace", "program": "rw_x",
                 "section": "raw_tp/x", "essential": False, "status": "loaded", "lost": None, "reason": None}
        c, _ = self.run_check(report(drop=[("trace", "rw_b")], extra=[extra]))
        self.assertEqual(self.failed(c), ["the programs are exactly those of the built objects"])

    def test_wrong_section_fails(self):
        c, _ = self.run_check(report({("trace", "rw_b"): {"section": "iter/tcp"}}))
        self.assertEqual(self.failed(c), ["each program's section is the built one"])

    def test_duplicate_fails(self):
        lines = report()
        c, _ = self.run_check(lines[:1] + lines[:-1] + lines[-1:], expect="")
        self.assertIn("each program reported once", self.failed(c))

    def test_summary_counts_must_match(self):
        c, _ = self.run_check(report(summary={"loaded": 3}))
        self.assertEqual(self.failed(c), ["verify_summary.loaded"])

    def test_unknown_status_fails(self):
        c, _ = self.run_check(report({("trace", "rw_a"): {"status": "skipped"}}))
        self.assertIn("every bpf_program line has object, program, essential, a known status", self.failed(c))

    def test_not_json_fails(self):
        c, _ = self.run_check(report() + ["rstwatch: warning: on stdout"])
        self.assertEqual(self.failed(c), ["every line is an NDJSON event with v/event/ts/host"])

    def test_no_verify_command_is_a_reported_skip(self):
        c, rec = self.run_check([], rc=2, err=["rstwatch: error: unknown subcommand 'verify' (see rstwatch --help)"])
        self.assertEqual(c.rows, [])
        self.assertFalse(rec["available"])

    def test_verify_that_prints_nothing_fails(self):
        c, _ = self.run_check([], rc=3, err=["rstwatch: error: no BTF"])
        self.assertIn("rstwatch verify exit status (0: no essential program failed)", self.failed(c))
        self.assertIn("the programs are exactly those of the built objects", self.failed(c))


class BuiltObjects(unittest.TestCase):
    def test_programs_are_the_skeletons(self):
        bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
        if not OBJECTS or not os.access(bpftool, os.X_OK):
            self.skipTest("no built objects given, or no bpftool")
        for obj in OBJECTS:
            skel = subprocess.run([bpftool, "gen", "skeleton", obj, "name", "rw_selftest"], check=True,
                                  capture_output=True, text=True).stdout
            want = set(re.findall(r"struct bpf_program \*(\w+);", skel))
            got = check.bpf_programs(obj)
            self.assertTrue(want, f"{obj}: no programs in its skeleton")
            self.assertEqual(set(got), want, obj)
            self.assertNotIn(".text", got.values(), obj)


if __name__ == "__main__":
    OBJECTS = sys.argv[1:]
    unittest.main(argv=sys.argv[:1], verbosity=1)
