#!/usr/bin/python3
"""Validate rstwatch NDJSON against schema/events.schema.json.

    scripts/validate-events.py [--require TYPE[,TYPE...]|all] [FILE ...]   (stdin without FILE)

Every line must be a JSON object valid for its event type. --require fails
unless each listed event type occurs at least once. Prints a count per type.
Exit 0 when valid, 1 when not, 2 on usage errors.
"""
import argparse
import collections
import json
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    sys.exit("python3-jsonschema is missing: apt-get install python3-jsonschema (and run /usr/bin/python3)")

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent.parent / "schema"


def load_validator():
    root = json.loads((SCHEMA_DIR / "events.schema.json").read_text())
    store = {}
    for path in SCHEMA_DIR.glob("*.schema.json"):
        doc = json.loads(path.read_text())
        store[doc["$id"]] = doc
    resolver = jsonschema.RefResolver(base_uri=root["$id"], referrer=root, store=store)
    return jsonschema.Draft202012Validator(root, resolver=resolver), root


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--require", default="", help="comma-separated event types that must occur, or 'all'")
    args = ap.parse_args()

    validator, root = load_validator()
    known = root["properties"]["event"]["enum"]
    required = known if args.require == "all" else [t for t in args.require.split(",") if t]
    for t in required:
        if t not in known:
            print(f"--require: unknown event type {t!r}", file=sys.stderr)
            return 2

    counts = collections.Counter()
    errors = 0
    streams = [open(f, encoding="utf-8") for f in args.files] if args.files else [sys.stdin]
    for stream in streams:
        name = getattr(stream, "name", "<stdin>")
        for lineno, line in enumerate(stream, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"{name}:{lineno}: not JSON: {e}: {line[:200]}", file=sys.stderr)
                errors += 1
                continue
            problems = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
            if problems:
                errors += 1
                for p in problems[:5]:
                    where = "/".join(str(x) for x in p.absolute_path) or "(line)"
                    print(f"{name}:{lineno}: {doc.get('event', '?')}: {where}: {p.message}", file=sys.stderr)
                continue
            counts[doc["event"]] += 1

    for t, n in sorted(counts.items()):
        print(f"{t}: {n}")
    missing = [t for t in required if counts[t] == 0]
    if missing:
        print("missing event types: " + ", ".join(missing), file=sys.stderr)
    if errors or missing:
        print(f"INVALID: {errors} bad line(s)", file=sys.stderr)
        return 1
    print(f"valid: {sum(counts.values())} line(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
