#!/usr/bin/env python3
"""Binary size per target: bytes, xz -9, and xz per 256 KiB block (what a
squashfs with OpenWrt's default block size stores).

  size_report.py report [--write docs/benchmarks.md] BIN...   (TRIPLE=PATH pairs)
  size_report.py check BUDGET_FILE FEATURESET=PATH...
"""
import datetime
import lzma
import os
import re
import sys

BLOCK = 256 * 1024
SECTION = "### Per target (`make size-report`)"


def sizes(path):
    """(bytes, xz -9 bytes, squashfs-style per-block xz bytes) of a file."""
    with open(path, "rb") as f:
        data = f.read()
    whole = len(lzma.compress(data, preset=9))
    blocks = 0
    for i in range(0, len(data), BLOCK):
        chunk = data[i:i + BLOCK]
        packed = len(lzma.compress(chunk, preset=9))
        blocks += min(packed, len(chunk))  # squashfs stores a block raw if xz does not help
    return len(data), whole, blocks


def mib(n):
    return "%.2f MiB" % (n / 1048576.0)


def table(pairs):
    out = ["| target | bytes | xz -9 | xz per 256 KiB block |", "| --- | ---: | ---: | ---: |"]
    for name, path in pairs:
        b, x, s = sizes(path)
        out.append("| %s | %d (%s) | %d (%s) | %d (%s) |" % (name, b, mib(b), x, mib(x), s, mib(s)))
    return out


def replace_section(doc, body):
    """Replace (or append) the per-target table section of the markdown `doc`."""
    lines = doc.splitlines()
    try:
        start = lines.index(SECTION)
    except ValueError:
        if lines and lines[-1].strip():
            lines.append("")
        return "\n".join(lines + [SECTION, ""] + body) + "\n"
    end = start + 1
    while end < len(lines) and not lines[end].startswith(("## ", "### ")):
        end += 1
    new = lines[:start] + [SECTION, ""] + body + ([""] if end < len(lines) else []) + lines[end:]
    return "\n".join(new) + "\n"


def parse_pairs(args):
    pairs = []
    for a in args:
        name, _, path = a.partition("=")
        if not path:
            raise SystemExit("size_report: expected NAME=PATH, got %r" % a)
        if not os.path.isfile(path):
            raise SystemExit("size_report: %s: no binary at %s; build it first" % (name, path))
        pairs.append((name, path))
    return pairs


def read_budget(path):
    """{(target, featureset): max_bytes} from size-budget.txt."""
    budget = {}
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) != 3 or not line[2].isdigit():
                raise SystemExit("%s:%d: expected `target features max_bytes`" % (path, no))
            budget[(line[0], line[1])] = int(line[2])
    return budget


def main(argv):
    if len(argv) >= 2 and argv[0] == "report":
        args = argv[1:]
        out = None
        if args[0] == "--write":
            out, args = args[1], args[2:]
        body = table(parse_pairs(args))
        body += ["", "The firmware build (see above), stripped, "
                 "measured %s by `make size-report`." % datetime.date.today().isoformat()]
        print("\n".join(body))
        if out:
            doc = open(out, encoding="utf-8").read() if os.path.exists(out) else "# Benchmarks\n"
            with open(out, "w", encoding="utf-8") as f:
                f.write(replace_section(doc, body))
        return 0
    if len(argv) >= 3 and argv[0] == "check":
        budget = read_budget(argv[1])
        failed = 0
        for key, path in parse_pairs(argv[2:]):
            target, _, feat = key.partition(":")
            limit = budget.get((target, feat))
            if limit is None:
                raise SystemExit("size_report: no budget for %s %s in %s" % (target, feat, argv[1]))
            size = os.path.getsize(path)
            ok = size <= limit
            failed += not ok
            print("%s %s %s: %d bytes (%s), budget %d (%s)" % (
                "ok  " if ok else "FAIL", target, feat, size, mib(size), limit, mib(limit)))
        print("%d passed, %d failed" % (len(argv) - 2 - failed, failed))
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
