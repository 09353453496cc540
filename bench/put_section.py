"""Replace (or append) one `## ` section of a Markdown file with a new one.

Usage: put_section.py DOC.md SECTION.md  (SECTION.md starts with its `## ` heading)
"""
import pathlib
import sys

doc_path, sec_path = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
section = sec_path.read_text().rstrip("\n") + "\n"
heading = section.splitlines()[0]
doc = doc_path.read_text() if doc_path.exists() else "# Benchmarks\n"
lines = doc.splitlines(keepends=True)
out, skipping, done = [], False, False
for line in lines:
    if line.rstrip("\n") == heading:
        out.append(section + "\n")
        skipping, done = True, True
        continue
    if skipping and line.startswith("## "):
        skipping = False
    if not skipping:
        out.append(line)
if not done:
    if out and not out[-1].endswith("\n\n"):
        out.append("\n")
    out.append(section)
doc_path.write_text("".join(out))
