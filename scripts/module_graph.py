#!/usr/bin/env python3
"""The module graph of src/, drawn from the imports, and the layering rules.

`make lint` runs it: it fails on an import cycle between modules (parents and
their own children excepted: a parent declares its children, a child may use
its parent's items) and on an import that goes up a layer (see LAYERS).
Test modules (tests.rs, *_tests.rs, inline `mod tests`) are left out: tests may
reach anywhere.

It also checks that the module map in docs/design.md names every module of
src/ and src/host/, and nothing that is not there.

    scripts/module_graph.py [--src src] [--doc docs/design.md] [--dot]
"""

import argparse
import os
import re
import sys

# A top-level module may import only from the modules listed for it
# (and from itself). Pure layers come first.
LAYERS = {
    "model": [],
    "manifest": ["model"],
    "plan": ["model"],
    "fleet": ["model"],
    "host": ["model", "manifest", "plan"],
    "converge": ["model", "plan", "host"],
    "observe": ["model", "plan", "host", "converge"],
    "cli": ["model", "manifest", "plan", "fleet", "host", "converge", "observe"],
    "fuzz": ["model", "manifest", "plan", "fleet", "host"],
}
# Pure layers: no syscall crate, no file writes.
PURE = {"model", "manifest", "plan", "fleet"}
PURE_FORBIDDEN = re.compile(r"\b(libc|nix|rustix)::|std::fs::|std::process::|std::net::TcpStream")

ROOTS = {"crate", "super", "self"}
TEST_FILE = re.compile(r"(^|_)tests\.rs$")
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", re.M)
USE = re.compile(r"\buse\s+([^;]+);", re.S)
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def module_of(rel):
    """src-relative file path -> module path (tuple of segments)."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def expand(tree):
    """`a::{b, c::{d, self}}` -> ["a::b", "a::c::d", "a::c"]."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        i = s.find("{")
        if i < 0:
            for item in split_top(s):
                if item == "self":
                    out.append(prefix.rstrip(":"))
                elif item:
                    out.append(prefix + item)
            return
        head, body = s[:i], s[i + 1 : s.rfind("}")]
        for item in split_top(body):
            walk(prefix + head, item)

    def split_top(s):
        depth, cur, items = 0, "", []
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        items.append(cur)
        return [x for x in items if x]

    walk("", tree)
    return out


def resolve(path, here, modules):
    """A `crate::a::b::C` / `super::x` / `child::y` path used in module `here` ->
    the deepest module it names, or None (std, an external crate, an item)."""
    segs = path.split("::")
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = here
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    else:
        if here + (segs[0],) not in modules:
            return None
        base = here
    best = base if base in modules else None
    cur = base
    for s in segs:
        cur = cur + (s,)
        if cur in modules:
            best = cur
        else:
            break
    return best


def related(a, b):
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def scan(src):
    files = {}
    for dirpath, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, n), src)
                if rel == "main.rs" or TEST_FILE.search(n):
                    continue
                files[module_of(rel)] = os.path.join(dirpath, n)
    modules = set(files)
    edges = {}  # (from, to) -> "file:line"
    impure = []
    for mod, path in files.items():
        text = strip_comments(open(path, encoding="utf-8").read())
        m = INLINE_MOD.search(text)
        while m and m.group(1) != "tests":
            m = INLINE_MOD.search(text, m.end())
        if m:
            text = text[: m.start()]  # the test module at the end is left out
        refs = []
        for u in USE.finditer(text):
            line = text.count("\n", 0, u.start()) + 1
            refs += [(p, line) for p in expand(u.group(1))]
        code = USE.sub(lambda u: "\n" * u.group(0).count("\n"), text)
        for p in PATH.finditer(code):
            refs.append((p.group(0), code.count("\n", 0, p.start()) + 1))
        for ref, line in refs:
            target = resolve(ref, mod, modules)
            if target is None or target == mod or related(target, mod):
                continue
            edges.setdefault((mod, target), f"{path}:{line}")
        if mod and mod[0] in PURE:
            for i, l in enumerate(text.splitlines(), 1):
                if PURE_FORBIDDEN.search(l):
                    impure.append(f"{path}:{i}: a pure module uses `{PURE_FORBIDDEN.search(l).group(0)}`")
    return modules, edges, impure


def cycles(modules, edges):
    """Strongly connected components with more than one module (Tarjan)."""
    graph = {m: [] for m in modules}
    for a, b in edges:
        graph[a].append(b)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return out


def map_problems(src, doc):
    """The module tables of `doc` against `ls src` and `ls src/host`."""
    text = open(doc, encoding="utf-8").read()
    named = set(re.findall(r"^\| `((?:src/)?(?:host/)?[a-z_]+(?:\.rs|/))`", text, re.M))
    named = {n if n.startswith("src/") else "src/" + n for n in named}
    present = set()
    for d in ("", "host/"):
        for e in os.listdir(os.path.join(src, d)):
            if e in ("lib.rs", "main.rs", "mod.rs"):
                continue
            full = os.path.join(src, d, e)
            if os.path.isdir(full) or e.endswith(".rs"):
                present.add("src/" + d + e + ("/" if os.path.isdir(full) else ""))
    out = [f"{doc}: the module map does not list `{m}`" for m in sorted(present - named)]
    out += [f"{doc}: the module map lists `{m}`, which is not in {src}" for m in sorted(named - present)]
    return out


def name(m):
    return "::".join(m) or "crate"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="src")
    ap.add_argument("--doc", default="docs/design.md")
    ap.add_argument("--dot", action="store_true")
    args = ap.parse_args()
    modules, edges, impure = scan(args.src)
    if args.dot:
        print("digraph berth {")
        for a, b in sorted(edges):
            print(f'  "{name(a)}" -> "{name(b)}";')
        print("}")
        return 0
    problems = list(impure) + map_problems(args.src, args.doc)
    for comp in cycles(modules, edges):
        members = set(comp)
        why = [f"  {name(a)} -> {name(b)} ({at})" for (a, b), at in sorted(edges.items()) if a in members and b in members]
        problems.append("import cycle: " + ", ".join(map(name, comp)) + "\n" + "\n".join(why))
    for (a, b), at in sorted(edges.items()):
        top_a, top_b = (a[:1] or ("crate",))[0], (b[:1] or ("crate",))[0]
        if top_a == top_b or top_a == "crate":
            continue
        allowed = LAYERS.get(top_a)
        if allowed is None:
            problems.append(f"{at}: module `{top_a}` is not in scripts/module_graph.py LAYERS; add it")
        elif top_b not in allowed:
            problems.append(f"{at}: `{name(a)}` imports `{name(b)}`, a layer above it (allowed: {', '.join(allowed) or 'nothing'})")
    for p in problems:
        print(f"module_graph: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"module_graph: {len(modules)} modules, {len(edges)} imports, no cycle, no upward import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
