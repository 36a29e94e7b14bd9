"""Every private name of faust's, mode's or aiokafka's that the processor relies on is
still there with the signature it was written against, and only faust_compat uses any.

A failure names the attribute: `faust_compat/relied_on.py` says what relies on it. Only
that declaration is imported at collection: against a faust that lacks a name the
processor imports, the checks of every declared name still run, each naming its own.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from services.processor.faust_compat.relied_on import RELIED_ON, Reliance

PROCESSOR = Path(__file__).resolve().parents[3] / "services" / "processor"
COMPAT = PROCESSOR / "faust_compat"
UPSTREAM = ("faust", "mode", "aiokafka")

# Private names our subclasses of faust's classes add (all in faust_compat but the state
# table's): test_our_names_on_faust_subclasses_are_not_fausts checks none shadows faust's.
OURS: dict[str, tuple[str, ...]] = {
    "services.processor.faust_compat.consumer:ContiguousCommitConsumer": (
        "_acking",
        "_held_commits",
    ),
    "services.processor.faust_compat.sensor:BatchSensor": ("_received",),
    "services.processor.faust_compat.shutdown:BoundedStopWorker": ("_deadline", "_exit_hard"),
    "services.processor.tables:StateTable": ("_partitioner",),
}
# The faust subclasses in faust_compat, whose overrides must all be declared.
SUBCLASSES = (
    "services.processor.faust_compat.consumer:ContiguousCommitConsumer",
    "services.processor.faust_compat.consumer:ShortFetchWaitThread",
    "services.processor.faust_compat.sensor:BatchSensor",
    "services.processor.faust_compat.shutdown:BoundedStopWorker",
)
# Not faust's either: the standard library's documented immediate exit.
STDLIB = {"_exit"}


def resolve(path: str) -> Any:
    """`module` or `module:Qual.name` -> the object."""
    module_name, _, qualname = path.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):
        found = getattr(found, part)
    return found


def upstream_sources(owner: type) -> list[str]:
    """The source of every faust, mode or aiokafka class `owner` is made of."""
    return [
        inspect.getsource(cls) for cls in owner.__mro__ if cls.__module__.split(".")[0] in UPSTREAM
    ]


def defined_upstream(owner: type, name: str) -> bool:
    """`name` is a member of `owner` or set or read as `self.name` in its classes' source."""
    if hasattr(owner, name):
        return True
    pattern = re.compile(rf"\bself\.{re.escape(name)}\b")
    return any(pattern.search(source) for source in upstream_sources(owner))


def parameters(member: Any) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(member).parameters if p != "self")


@pytest.mark.parametrize("reliance", RELIED_ON, ids=str)
def test_a_name_compat_relies_on_is_still_there(reliance: Reliance) -> None:
    owner = resolve(reliance.owner)
    if reliance.params is not None:
        member = getattr(owner, reliance.name, None)
        assert member is not None, f"{reliance} is gone (faust_compat: {reliance.why})"
        found = parameters(member)
        assert found == reliance.params, (
            f"{reliance} changed signature: ({', '.join(reliance.params)}) is now "
            f"({', '.join(found)}) (faust_compat: {reliance.why})"
        )
    elif isinstance(owner, ModuleType):
        assert hasattr(owner, reliance.name), f"{reliance} is gone ({reliance.why})"
    else:
        assert defined_upstream(owner, reliance.name), (
            f"{reliance} is gone: no longer an attribute of {owner.__qualname__} "
            f"(faust_compat: {reliance.why})"
        )
    if reliance.caller is not None:
        try:
            source = inspect.getsource(resolve(reliance.caller))
        except AttributeError:
            pytest.fail(f"{reliance.caller} is gone: nothing shows it still uses {reliance.name}")
        assert re.search(rf"\.{re.escape(reliance.name)}\b", source), (
            f"{reliance.caller} no longer uses {reliance.name}: faust_compat's "
            f"{reliance.why!r} would silently do nothing"
        )


def private_names(path: Path) -> set[str]:
    """Private names a module reaches for (`x._name`) or defines (`def _name`)."""
    text = path.read_text()
    return set(re.findall(r"\._([a-z]\w*)", text)) | set(re.findall(r"def _([a-z]\w*)", text))


def test_faust_compat_uses_only_declared_private_names() -> None:
    declared = {r.name for r in RELIED_ON}
    ours = {name for names in OURS.values() for name in names}
    undeclared = {
        f"{path.name}: _{name}"
        for path in COMPAT.glob("*.py")
        if path.name != "relied_on.py"  # names faust's callers, checked above
        for name in private_names(path)
        if f"_{name}" not in declared | ours | STDLIB
    }
    assert not undeclared, (
        "faust_compat uses private names that faust_compat/relied_on.py does not declare "
        f"(or, if ours, OURS here): {sorted(undeclared)}"
    )


def test_only_faust_compat_reaches_into_faust() -> None:
    """Outside faust_compat the processor's private names are its own: `self._x` only."""
    reaching = [
        f"{path.relative_to(PROCESSOR)}:{number}: {line.strip()}"
        for path in sorted(PROCESSOR.rglob("*.py"))
        if COMPAT not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(?<!\bself)\._[a-z]", line)
    ]
    assert not reaching, "private names used outside faust_compat:\n" + "\n".join(reaching)


@pytest.mark.parametrize(
    ("path", "name"), [(path, name) for path, names in OURS.items() for name in names]
)
def test_our_names_on_faust_subclasses_are_not_fausts(path: str, name: str) -> None:
    subclass = resolve(path)
    base = next(cls for cls in subclass.__mro__ if cls.__module__.split(".")[0] in UPSTREAM)
    assert not defined_upstream(base, name), (
        f"{base.__module__}:{base.__qualname__} now has {name} of its own: "
        f"{subclass.__name__}.{name} would shadow it"
    )


def test_every_override_in_compat_is_declared() -> None:
    """A method a compat class overrides or extends is in RELIED_ON, so that a change of
    its signature fails here rather than in production."""
    declared = {r.name for r in RELIED_ON}
    ours = {name for names in OURS.values() for name in names}
    undeclared = [
        f"{cls.__name__}.{name}"
        for cls in map(resolve, SUBCLASSES)
        for name, member in vars(cls).items()
        if callable(member)
        and (name == "__init__" or not name.startswith("__"))
        and any(hasattr(base, name) for base in cls.__mro__[1:])
        and name not in declared | ours
    ]
    assert not undeclared, f"overrides missing from faust_compat/relied_on.py: {undeclared}"


def test_topics_created_before_start_carry_fausts_names() -> None:
    from services.processor.app import build_app
    from services.processor.faust_compat.changelog import changelog_topic_name, leader_topic_name
    from services.processor.tables import STATE_TABLES
    from services.runtime.settings import Settings

    settings = Settings()
    app: Any = build_app(settings, settings.rules(), web_port=0)
    app_id = settings.processor_consumer_group
    for name in STATE_TABLES:
        table = app.tables[name]
        assert table.changelog_topic.get_topic_name() == changelog_topic_name(app_id, name)
    assert app._leader_assignor._leader_topic_name == leader_topic_name(app_id)
