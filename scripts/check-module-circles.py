#!/usr/bin/env python3
"""Import circles between the top-level modules of a Rust crate.

Usage: check-module-circles.py SRC_DIR

Reads every `crate::NAME` path in SRC_DIR's files (in `use` lines and
inline; comments and `#[cfg(test)] mod tests` left out), prints which
top-level module uses which, then the circles: groups of modules that use
each other, directly or through others (strongly connected components).
Exits 1 if there is one. Instant; run by scripts/test."""
import os, re, sys
src = sys.argv[1]
tops = {}
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith('.rs'):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, src)
        top = rel.split(os.sep)[0].removesuffix('.rs')
        if top in ('lib', 'main'):
            continue
        tops.setdefault(top, []).append(path)
edges = {t: set() for t in tops}
pat = re.compile(r'\bcrate::(\w+)')
grouped = re.compile(r'\bcrate::\{([^}]*)\}', re.S)
for top, paths in tops.items():
    for p in paths:
        text = open(p).read()
        # test modules are left out: what a test imports is not a dependency
        text = text.split('#[cfg(test)]\nmod tests')[0]
        # comments (and doc comments) name modules without depending on them
        text = re.sub(r'//[^\n]*', '', text)
        names = set(pat.findall(text))
        for g in grouped.findall(text):
            names |= {n.strip().split('::')[0] for n in g.split(',') if n.strip()}
        for n in names:
            if n in tops and n != top:
                edges[top].add(n)
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in sorted(edges[v]):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in sorted(edges):
    if v not in index:
        visit(v)
for v in sorted(edges):
    print(f"{v} -> {', '.join(sorted(edges[v])) or '-'}")
circles = [sorted(c) for c in sccs if len(c) > 1]
print("circles:", circles if circles else "none")
sys.exit(1 if circles else 0)
