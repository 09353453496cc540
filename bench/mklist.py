#!/usr/bin/env python3
"""Pick a deterministic set of about 5,000 files from /usr and /lib whose
gzip tarball is about 40 MB: every Nth file (sorted walk), then larger files
first when the sample compresses too small. Prints one path per line."""
import os, stat, sys

want_files = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
want_bytes = int(sys.argv[2]) if len(sys.argv) > 2 else 170_000_000  # tuning knob, not exact
files = []
for top in ("usr", "lib"):
    for d, dirs, fs in os.walk(os.path.join("/", top)):
        dirs.sort()
        for f in sorted(fs):
            p = os.path.join(d, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size < 2_000_000:
                files.append((p, st.st_size))
            elif stat.S_ISLNK(st.st_mode):
                files.append((p, 0))
stride = max(1, len(files) // want_files)
pick = files[::stride][:want_files]
total = sum(s for _, s in pick)
# Too small: swap the smallest picks for the next larger unpicked files.
if total < want_bytes:
    chosen = set(p for p, _ in pick)
    rest = sorted((f for f in files if f[0] not in chosen), key=lambda f: -f[1])
    pick.sort(key=lambda f: f[1])
    i = 0
    while total < want_bytes and i < len(rest) and i < len(pick):
        total += rest[i][1] - pick[i][1]
        pick[i] = rest[i]
        i += 1
for p, _ in sorted(pick):
    print(p.lstrip("/"))
