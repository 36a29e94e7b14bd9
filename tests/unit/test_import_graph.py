"""The import graph of services/ and schemas/: no circle, and one-way package boundaries.

Imports are read with `ast`, not by importing: every import counts, including those
inside functions and under `if TYPE_CHECKING:` (a circle of annotations is still two
modules that cannot be understood, or moved, one without the other).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "schemas")

ALERTER = "services.alerter"
SUBSCRIPTIONS = "services.subscriptions"
# All the alerter may import of the subscriptions: the queue it hands alerts to, and
# what it starts of them. Nothing of the alerter is imported by the subscriptions.
SUBSCRIPTIONS_INTERFACE = frozenset(
    {"services.subscriptions.handoff", "services.subscriptions.service"}
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imported(name: str, source: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The modules of `known` that the module `name` (of `source`) imports, each once."""
    seen: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module, `from module import name`
            # the module.
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in known else base for t in targets]
        for target in targets:
            if target in known and target != name and target not in seen:
                seen.add(target)
                yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    names = set(known)
    return {
        name: set(imported(name, path.read_text(encoding="utf-8"), path.stem == "__init__", names))
        for name, path in known.items()
    }


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_kind_of_import_is_read() -> None:
    known = {"p", "p.a", "p.b", "p.c", "p.d", "p.e", "q"}
    source = """
import q
from p import a
from p.b import something
from . import c
if TYPE_CHECKING:
    from .d import Thing
def f():
    from p.e import g
"""
    assert set(imported("p.x", source, False, known)) == {"q", "p.a", "p.b", "p.c", "p.d", "p.e"}
    assert set(imported("p", "from . import a", True, known)) == {"p.a"}
    edges = graph()
    assert "services.alerter.service" in edges["services.cli.alert"]
    assert "services.ingestor.websocket" in edges["services.cli.ingest"]  # in a function


def test_a_circle_is_found() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    assert circles(graph()) == []


def test_the_alerter_reaches_the_subscriptions_only_through_their_interface() -> None:
    edges = graph()
    crossing = sorted(
        (source, target)
        for source, targets in edges.items()
        for target in targets
        if (
            within(source, ALERTER)
            and within(target, SUBSCRIPTIONS)
            and target not in SUBSCRIPTIONS_INTERFACE
        )
        or (within(source, SUBSCRIPTIONS) and within(target, ALERTER))
    )
    assert crossing == []


def test_the_interface_modules_exist() -> None:
    assert set(modules()) >= SUBSCRIPTIONS_INTERFACE
