#!/usr/bin/env python3
"""Finds circular imports between the source files of each crate.

A file depends on another when it names an item defined there: through `use crate::…`,
`crate::…` paths, `super::…` paths, or a name re-exported by `lib.rs`/`mod.rs` (followed to the file
that defines it). Declaring a child module (`mod x;`) is not a dependency. Test-only files
(`*_tests.rs`, `tests.rs`, and files under `tests/`, `benches/`, `examples/`) are skipped, as are
`#[cfg(test)]` modules. Exits 1 and prints each cycle when any crate has one.
Usage: python3 .ci/module-cycles.py [crates-dir]
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "crates"


def module_files(src):
    """Maps module paths (tuples) to files for one crate's src/ directory."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main"):
                rel = rel[:-1]
            elif rel[-1] == "mod":
                rel = rel[:-1]
            mods[tuple(rel)] = path
    return mods


def strip_tests(text):
    """Drops `#[cfg(test)]` items (a `mod … { … }` block or a `#[path]` module line)."""
    out, i = [], 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        k = j + len("#[cfg(test)]")
        brace = text.find("{", k)
        semi = text.find(";", k)
        if semi >= 0 and (brace < 0 or semi < brace):
            i = semi + 1
            continue
        depth, m = 0, brace
        while m < len(text):
            if text[m] == "{":
                depth += 1
            elif text[m] == "}":
                depth -= 1
                if depth == 0:
                    break
            m += 1
        i = m + 1


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def inline_paths(body, mod, mods):
    """Yields paths written inline (outside `use`): `crate::…`, `super::…`, `self::…`, or starting
    with a child module's name."""
    for m in re.finditer(r"(?<![A-Za-z0-9_:])([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+)", body):
        segs = m.group(1).split("::")
        if segs[0] in ("crate", "super", "self"):
            yield segs
        elif mod + (segs[0],) in mods:
            yield ["self"] + segs


def expand_tree(tree, prefix=()):
    tree = tree.strip()
    depth, start, parts = 0, 0, []
    brace = tree.find("{")
    if brace < 0:
        segs = [s.strip() for s in tree.split(" as ")[0].split("::") if s.strip()]
        yield list(prefix) + segs
        return
    head = [s for s in tree[:brace].split("::") if s.strip()]
    inner = tree[brace + 1: tree.rfind("}")]
    for idx, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:idx])
            start = idx + 1
    parts.append(inner[start:])
    for part in parts:
        if part.strip():
            yield from expand_tree(part, tuple(prefix) + tuple(h.strip() for h in head))


def main():
    cycles_found = False
    for crate in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        mods = module_files(src)
        texts = {}
        for mod, path in mods.items():
            if path.endswith("_tests.rs") or path.endswith(os.sep + "tests.rs"):
                continue
            with open(path) as f:
                texts[mod] = strip_comments(strip_tests(f.read()))
        # Re-exports: (module, name) -> module the name comes from.
        reexports = {}
        for mod, text in texts.items():
            for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
                for path in expand_tree(m.group(1).replace("\n", " ")):
                    target = resolve(mod, path, mods)
                    if target is not None and path:
                        reexports[(mod, path[-1])] = target
        graph = {mod: set() for mod in texts}
        for mod, text in texts.items():
            body = re.sub(r"\buse\s+[^;]+;", "", text)
            for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text):
                for path in expand_tree(m.group(2).replace("\n", " ")):
                    target = resolve(mod, path, mods, reexports)
                    if target is None or target == mod or target not in texts:
                        continue
                    # A public re-export is a dependency only when this file uses the name.
                    name = path[-1]
                    if m.group(1) and not re.search(r"\b" + re.escape(name) + r"\b", body):
                        continue
                    graph[mod].add(target)
            for path in inline_paths(body, mod, mods):
                target = resolve(mod, path, mods, reexports)
                if target is not None and target != mod and target in texts:
                    graph[mod].add(target)
        for scc in strongly_connected(graph):
            if len(scc) > 1:
                cycles_found = True
                names = ", ".join(sorted(os.path.relpath(mods[m], ROOT) for m in scc))
                print(f"cycle in {crate}: {names}")
    if cycles_found:
        sys.exit(1)
    print("no circular imports between files of one crate")


def resolve(mod, path, mods, reexports=None):
    """The module (file) that defines the item `path` names, seen from `mod`."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] == "super":
        base, rest = mod, path
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif path[0] == "self":
        base, rest = mod, path[1:]
    elif mod + (path[0],) in mods:
        base, rest = mod, path
    else:
        return None
    current = base
    for i, seg in enumerate(rest):
        if seg in ("*", "self"):
            break
        nxt = current + (seg,)
        if nxt in mods:
            current = nxt
            continue
        if reexports is not None and (current, seg) in reexports:
            return follow(reexports, defining(reexports, current, seg), rest[i + 1:])
        break
    return current


def defining(reexports, mod, name):
    """The file that defines `name`, re-exported by `mod`: follows a chain of re-exports (lib.rs
    re-exporting a name that a mod.rs re-exports from its child) to the last one."""
    target, seen = reexports[(mod, name)], {mod}
    while (target, name) in reexports and target not in seen:
        seen.add(target)
        target = reexports[(target, name)]
    return target


def follow(reexports, target, rest):
    seen = set()
    while rest and (target, rest[0]) in reexports and target not in seen:
        seen.add(target)
        target, rest = reexports[(target, rest[0])], rest[1:]
    return target


def strongly_connected(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

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
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    main()
