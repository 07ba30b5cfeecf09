#!/usr/bin/env python3
"""Finds circular imports between the source files of each crate.

A file depends on another when it names an item defined there: through `use crate::…`,
`crate::…` paths, `super::…` paths, or a name another module brings in with `use` (a re-export by
`lib.rs`/`mod.rs`, a private import a child reaches through `super::`, or a glob `use x::*`),
followed through every such hop to the file that defines it. Declaring a child module (`mod x;`)
is not a dependency. Comments and the contents of string and char literals are ignored. Test-only files
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
    """Drops comments (nested block comments included) and empties string and char literals, so
    neither a `/*` in a doc comment nor a path or brace inside a string is read as code."""
    out, i, n = [], 0, len(text)
    ident = re.compile(r"[A-Za-z0-9_]")
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (
            i > 0 and ident.match(text[i - 1]) and not (
                text[i - 1] == "b" and (i < 2 or not ident.match(text[i - 2])))):
            hashes = len(re.match(r'r(#*)"', text[i:]).group(1))
            close = text.find('"' + "#" * hashes, i + 2 + hashes)
            i = n if close < 0 else close + 1 + hashes
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and i + 2 < n and (text[i + 1] == "\\" or text[i + 2] == "'"):
            close = text.find("'", i + 3 if text[i + 1] == "\\" else i + 2)
            i = n if close < 0 else close + 1
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


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
                texts[mod] = strip_tests(strip_comments(f.read()))
        table = names_table(texts, mods)
        graph = {mod: set() for mod in texts}
        for mod, text in texts.items():
            body = re.sub(r"\buse\s+[^;]+;", "", text)
            for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text):
                for path in expand_tree(m.group(2).replace("\n", " ")):
                    target = resolve(mod, path, mods, table)
                    if target is None or target == mod or target not in texts:
                        continue
                    # A public re-export is a dependency only when this file uses the name.
                    name = path[-1]
                    if m.group(1) and not re.search(r"\b" + re.escape(name) + r"\b", body):
                        continue
                    graph[mod].add(target)
            for path in inline_paths(body, mod, mods):
                target = resolve(mod, path, mods, table)
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


def names_table(texts, mods):
    """What each module defines, the names it brings in with `use` ((module, name) -> the module
    the path leads to) and the modules it glob-imports."""
    defined, imports, globs = {}, {}, {}
    item = re.compile(
        r"\b(?:struct|enum|union|trait|type|fn|const|static|mod)\s+(?:r#)?([A-Za-z_][A-Za-z0-9_]*)"
        r"|\bmacro_rules!\s*([A-Za-z_][A-Za-z0-9_]*)")
    for mod, text in texts.items():
        defined[mod] = {a or b for a, b in item.findall(re.sub(r"\buse\s+[^;]+;", "", text))}
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for path in expand_tree(m.group(1).replace("\n", " ")):
                target = resolve(mod, path, mods)
                if target is None or not path:
                    continue
                if path[-1] == "*":
                    globs.setdefault(mod, []).append(target)
                elif path[-1] == "self":
                    if len(path) > 1:
                        imports[(mod, path[-2])] = target
                else:
                    imports[(mod, path[-1])] = target
    return defined, imports, globs


def resolve(mod, path, mods, table=None):
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
    for seg in rest:
        if seg in ("*", "self"):
            break
        nxt = current + (seg,)
        if nxt in mods:
            current = nxt
            continue
        if table is not None:
            target = defining(table, current, seg, set())
            if target is not None and target[-1:] == (seg,) and target in mods:
                current = target  # a module brought in with `use`: keep walking inside it
                continue
            if target is not None:
                return target
        break
    return current


def defining(table, mod, name, seen):
    """The module that defines `name` as `mod` sees it: `mod` itself, or where its `use` of the
    name (or a glob `use`) leads, followed hop by hop (lib.rs re-exporting what a mod.rs
    re-exports from its child). None when `mod` defines it or nothing says where it comes from."""
    defined, imports, globs = table
    if mod in seen or name in defined.get(mod, ()):
        return None
    seen.add(mod)
    if (mod, name) in imports:
        target = imports[(mod, name)]
        return defining(table, target, name, seen) or target
    for target in globs.get(mod, ()):
        if name in defined.get(target, ()):
            return target
        deeper = defining(table, target, name, seen)
        if deeper is not None:
            return deeper
    return None


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
