#!/usr/bin/env python3
"""The layout rules of a Rust crate's sources (ARCHITECTURE.md): no import
circle between its top-level modules, and no file over MAX lines before
its tests.

Usage: check-layout.py [--max-lines MAX] SRC_DIR...   (MAX: 600)

Circles: reads every `crate::` path in a crate's files, in `use` lines and
inline, grouped ones included however they nest or wrap
(`use crate::{report::{self, csv}, run};` names `report` and `run`);
comments, doc comments and `#[cfg(test)] mod tests` are left out (what a
test imports is not a dependency). Prints which top-level module uses
which, then the circles: groups of modules that use each other, directly
or through others (strongly connected components).

Sizes: counts each file's lines before its first `#[cfg(test)]` line (the
unit tests that follow are not the module's code) and names the files over
MAX.

Exits 1 if a crate has a circle or a file over MAX. Instant; run by
scripts/test on the server, the bench and the power-cut crate, and tested
by check-layout-test.py."""
import os
import re
import sys


def strip_comments(text):
    """The text without `//` line comments and `/* */` block comments.
    Strings are not parsed: a `//` or `crate::` inside one is rare in these
    sources, and would only add a dependency, never hide one."""
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    return re.sub(r'//[^\n]*', '', text)


def group_items(text, start):
    """The top-level items of the brace group opening at text[start] ('{'),
    split at the commas outside nested groups."""
    depth, item, items = 0, [], []
    for i in range(start, len(text)):
        c = text[i]
        if c == '{':
            depth += 1
            if depth == 1:
                continue
        elif c == '}':
            depth -= 1
            if depth == 0:
                items.append(''.join(item))
                return items
        elif c == ',' and depth == 1:
            items.append(''.join(item))
            item = []
            continue
        item.append(c)
    return items  # unbalanced: what was read


IDENT = re.compile(r'\s*(\w+)')


def crate_names(text):
    """The first path segment after each `crate::` in `text`."""
    names = set()
    for m in re.finditer(r'\bcrate\s*::\s*', text):
        after = m.end()
        if after < len(text) and text[after] == '{':
            for item in group_items(text, after):
                first = IDENT.match(item)
                if first:
                    names.add(first.group(1))
        else:
            first = IDENT.match(text, after)
            if first:
                names.add(first.group(1))
    names.discard('self')
    return names


def modules(src):
    """Top-level module name -> its files (`lib.rs` and `main.rs` left out)."""
    tops = {}
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith('.rs'):
                continue
            path = os.path.join(root, f)
            top = os.path.relpath(path, src).split(os.sep)[0].removesuffix('.rs')
            if top in ('lib', 'main'):
                continue
            tops.setdefault(top, []).append(path)
    return tops


def graph(tops):
    edges = {t: set() for t in tops}
    for top, paths in tops.items():
        for p in paths:
            with open(p) as f:
                text = f.read()
            text = text.split('#[cfg(test)]\nmod tests')[0]
            for n in crate_names(strip_comments(text)):
                if n in tops and n != top:
                    edges[top].add(n)
    return edges


def circles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
            sccs.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in sccs if len(c) > 1]


def code_lines(path):
    """Lines before the file's first `#[cfg(test)]` line."""
    n = 0
    with open(path) as f:
        for line in f:
            if line.startswith('#[cfg(test)]'):
                break
            n += 1
    return n


def check(src, max_lines):
    tops = modules(src)
    edges = graph(tops)
    print(f"== {src}")
    for v in sorted(edges):
        print(f"{v} -> {', '.join(sorted(edges[v])) or '-'}")
    found = circles(edges)
    print("circles:", found if found else "none")
    files = [p for paths in tops.values() for p in paths]
    files += [os.path.join(src, f) for f in ('lib.rs', 'main.rs')
              if os.path.exists(os.path.join(src, f))]
    big = sorted((code_lines(p), p) for p in files if code_lines(p) > max_lines)
    for n, p in big:
        print(f"over {max_lines} lines before its tests: {p} ({n})")
    print(f"files over {max_lines} lines: {len(big)} of {len(files)}")
    return not found and not big


def main(argv):
    max_lines = 600
    if len(argv) > 1 and argv[0] == '--max-lines':
        max_lines = int(argv[1])
        argv = argv[2:]
    if not argv:
        sys.exit(__doc__)
    ok = True
    for src in argv:
        ok = check(src, max_lines) and ok
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
