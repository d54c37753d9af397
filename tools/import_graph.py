#!/usr/bin/env python3
"""Checks the layering of Kiln's top-level modules (src/<module>): no import loop between
them, and no import from a lower layer up to a higher one.

One import = one source file naming `crate::<module>`. Layers, from the bottom, as the
README's Architecture section gives them. Prints the loops and upward imports; exits 1 if
there is any, or if a top-level module has no layer here.

    python3 tools/import_graph.py [src]
"""
import os
import re
import sys
from collections import defaultdict

LAYER = {
    "fhir": 0, "config": 0, "logging": 0, "crypto": 0, "mail": 0, "telemetry": 0,
    "search": 1,
    "store": 2,
    "access": 3,
    "engine": 4, "audit": 4,
    "state": 5, "apps": 5,
    "http": 6, "web": 6, "rest": 6, "auth": 6, "bulk": 6, "import": 6, "sample": 6,
    "portal": 6, "admin": 6, "docs": 6,
    "router": 7, "app": 7,
    "cli": 8, "bench": 8, "main": 8, "lib": 8,
}
CRATE_PATH = re.compile(r"\bcrate::([a-z_]+)")
CRATE_GROUP = re.compile(r"use crate::\{([^;]*)\};", re.S)


def module_of(path, src):
    head = os.path.relpath(path, src).split(os.sep)[0]
    return head[:-3] if head.endswith(".rs") else head


def imports(src):
    """(file, module, imported module) for every file under src."""
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as handle:
                text = re.sub(r"//[^\n]*", "", handle.read())
            targets = set(CRATE_PATH.findall(text))
            for group in CRATE_GROUP.findall(text):
                targets |= set(re.findall(r"(?:^|[,{\s])([a-z_]+)(?:::|\s*[,}]|$)", group))
            module = module_of(path, src)
            for target in targets - {module}:
                if target in LAYER:
                    yield os.path.relpath(path, src), module, target


def loops(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def main(src="src"):
    edges = defaultdict(set)
    upward = []
    for path, module, target in imports(src):
        edges[module].add(target)
        if LAYER.get(target, 0) > LAYER.get(module, 0):
            upward.append((path, target))
    unlayered = sorted(
        module_of(os.path.join(src, entry), src)
        for entry in os.listdir(src)
        if module_of(os.path.join(src, entry), src) not in LAYER
    )
    cycles = loops(edges)
    print(f"import loops between top-level modules: {len(cycles)}")
    for cycle in cycles:
        print("  " + " -> ".join(cycle))
    print(f"imports from a lower layer up to a higher one: {len(upward)}")
    for path, target in sorted(upward):
        print(f"  {path} -> {target}")
    for module in unlayered:
        print(f"top-level module without a layer in tools/import_graph.py: {module}")
    return 1 if cycles or upward or unlayered else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
