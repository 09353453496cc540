#!/bin/sh
# Compare extracting one large .tar.gz: berth (hidden `image extract`, sha256
# in the same pass) against GNU tar -xzf and busybox tar -xzf, side by side in
# one hyperfine run, plus peak RSS from /usr/bin/time -v. Appends the figures
# to docs/benchmarks.md under "## Image extraction".
# Usage: bench/extract.sh [path/to/berth]
set -eu

BERTH=$(realpath "${1:-target/release/berth}")
HERE=$(cd "$(dirname "$0")" && pwd)
DOC="$HERE/../docs/benchmarks.md"
W=${BENCH_DIR:-/tmp/berth-bench-extract}
RUNS=${RUNS:-10}

mkdir -p "$W"
TGZ="$W/src.tar.gz"
if [ ! -s "$TGZ" ]; then
    # 5,000 files from /usr and /lib, about 40 MB compressed (see mklist.py):
    # what a sample compresses to depends on the machine, so rescale up to 4 times.
    WANT=170000000
    for _ in 1 2 3 4; do
        python3 "$HERE/mklist.py" 5000 "$WANT" > "$W/list.txt"
        tar -C / -czf "$TGZ" -T "$W/list.txt"
        GOT=$(stat -c %s "$TGZ")
        [ "$GOT" -gt 36000000 ] && [ "$GOT" -lt 44000000 ] && break
        WANT=$(python3 -c "print(int($WANT * 40e6 / $GOT))")
    done
fi
FILES=$(tar -tzf "$TGZ" | wc -l)
SIZE_MB=$(python3 -c "print(round($(stat -c %s "$TGZ") / 1e6, 1))")

# Correctness first: berth must produce the same tree as GNU tar.
rm -rf "$W/a" "$W/b"
"$BERTH" image extract "$TGZ" "$W/a" >/dev/null
mkdir "$W/b" && tar -C "$W/b" -xzf "$TGZ"
diff -r --no-dereference "$W/a" "$W/b" >/dev/null || { echo "berth and GNU tar trees differ" >&2; exit 1; }
rm -rf "$W/a" "$W/b"

bench_at() { # $1: label, $2: directory the trees are extracted into
    O="$2/berth-bench-out"
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$W/h-$1.json" \
        --prepare "rm -rf $O" \
        -n berth "$BERTH image extract $TGZ $O" \
        -n "gnu tar" "mkdir $O && tar -C $O -xzf $TGZ" \
        -n "busybox tar" "mkdir $O && busybox tar -C $O -xzf $TGZ"
    rm -rf "$O"
}
rss() { # peak RSS in KiB of the largest process of a command
    rm -rf "$W/out"
    /usr/bin/time -v sh -c "$1" 2>&1 >/dev/null | awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}'
    rm -rf "$W/out"
}
# On disk (as on a router's flash, page cache and writeback included) and on
# tmpfs (CPU cost only, without the disk noise of a shared machine).
bench_at disk "$W"
bench_at tmpfs /dev/shm
R_BERTH=$(rss "$BERTH image extract $TGZ $W/out")
R_GNU=$(rss "mkdir $W/out && tar -C $W/out -xzf $TGZ")
R_BB=$(rss "mkdir $W/out && busybox tar -C $W/out -xzf $TGZ")
mkdir -p "$(dirname "$DOC")"

python3 - "$W/h-disk.json" "$W/h-tmpfs.json" "$DOC" "$FILES" "$SIZE_MB" "$R_BERTH" "$R_GNU" "$R_BB" <<'PY'
import json, sys, datetime, os, re
hd, ht, doc, files, size, rb, rg, rbb = sys.argv[1:]
runs = {"disk": {x["command"]: x for x in json.load(open(hd))["results"]},
        "tmpfs": {x["command"]: x for x in json.load(open(ht))["results"]}}
rss = {"berth": rb, "gnu tar": rg, "busybox tar": rbb}
lines = [
    "## Image extraction", "",
    f"{datetime.date.today()}, {os.uname().machine}, {os.cpu_count()} cores. One .tar.gz of {files} entries "
    f"({size} MB) built from /usr and /lib; hyperfine mean of the runs, side by side in one run. "
    "berth: `berth image extract` (the firmware build of `make static`), sha256 of the archive in the same pass, no syncfs "
    "(`image import` adds one syncfs before the rename).", "",
    "| tool | target | mean (s) | stddev (s) | ratio vs GNU tar | peak RSS (MiB) |",
    "|---|---|---|---|---|---|",
]
for where, r in runs.items():
    gnu = r["gnu tar"]["mean"]
    for name in ("berth", "gnu tar", "busybox tar"):
        x = r[name]
        lines.append(f"| {name} | {where} | {x['mean']:.3f} | {x['stddev']:.3f} | {x['mean']/gnu:.2f} | {int(rss[name])/1024:.1f} |")
lines += ["", "Goal: ratio <= 1.0 against GNU tar, peak RSS <= 8 MiB. Peak RSS is that of the largest "
          "process of the command (GNU tar runs gzip as a child process; berth and busybox inflate in-process). "
          "Disk runs include the kernel's page cache and writeback work and vary with other load on the "
          "machine; tmpfs runs isolate the cost of the pipeline itself.", ""]
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n\n"
# Replace our own section, keep everyone else's.
text = re.sub(r"## Image extraction\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n") + "\n\n"
open(doc, "w").write(text + "\n".join(lines))
print("\n".join(lines))
PY
