#!/usr/bin/env python3
"""Binary size per target: bytes, xz -9, and xz per 256 KiB block (what a
squashfs with OpenWrt's default block size stores).

  size_report.py report [--write docs/benchmarks.md] BIN...   (TRIPLE=PATH pairs)
  size_report.py check BUDGET_FILE TARGET:FEATURESET=PATH...
      each binary's bytes and per-block xz against the budget's two numbers
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
    """{(target, featureset): (max_bytes, max_xz or None)} from size-budget.txt."""
    budget = {}
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) != 4 or not line[2].isdigit() or not (line[3].isdigit() or line[3] == "-"):
                raise SystemExit("%s:%d: expected `target features max_bytes max_xz_bytes` "
                                 "(max_xz_bytes a number or -)" % (path, no))
            budget[(line[0], line[1])] = (int(line[2]), None if line[3] == "-" else int(line[3]))
    return budget


def over(what, size, limit):
    """The failure line for one measure over its budget."""
    return "%s is %d bytes (%s), over its budget of %d (%s) by %d bytes (%.1f KiB)" % (
        what, size, mib(size), limit, mib(limit), size - limit, (size - limit) / 1024.0)


def check(budget_file, args):
    """Measure each FEATURESET=PATH against the budget: a table, then one line
    per failure naming target, feature set, size, budget and overshoot."""
    budget = read_budget(budget_file)
    rows, failures = [], []
    for key, path in parse_pairs(args):
        target, _, feat = key.partition(":")
        if (target, feat) not in budget:
            raise SystemExit("size_report: no budget for %s %s in %s" % (target, feat, budget_file))
        max_raw, max_xz = budget[(target, feat)]
        raw, _, xz = sizes(path)
        bad = []
        if raw > max_raw:
            bad.append(over("raw size", raw, max_raw))
        if max_xz is not None and xz > max_xz:
            bad.append(over("xz (256 KiB blocks)", xz, max_xz))
        failures += ["FAIL %s %s: %s" % (target, feat, b) for b in bad]
        rows.append((target, feat, "%d (%s)" % (raw, mib(raw)), mib(max_raw),
                     "%d (%s)" % (xz, mib(xz)), mib(max_xz) if max_xz is not None else "-",
                     "FAIL" if bad else "ok"))
    head = ("target", "features", "bytes", "budget", "xz per 256 KiB block", "budget", "result")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for f in failures:
        print(f)
    bad_rows = sum(r[-1] == "FAIL" for r in rows)
    print("%d within budget, %d over (%s)" % (len(rows) - bad_rows, bad_rows, budget_file))
    return 1 if failures else 0


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
        return check(argv[1], argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
