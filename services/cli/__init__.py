"""The `marketsignal` command: one subcommand per service or tool.

Each subcommand is the module of the same name in this package (`marketsignal alert` is
`services/cli/alert.py`); the modules are thin adapters from arguments and settings to
the library code in the service packages.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from pydantic import ValidationError
from pydantic_settings import SettingsError

from services.detection.rules import RulesError
from services.runtime.settings import settings_problem


class Command(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module, one-line help). Modules are imported only when their command runs,
# so `marketsignal backtest` never loads Kafka or Faust.
COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("services.cli.backtest", "run the detectors on a CSV or JSONL file"),
    "schemas": ("services.cli.schemas", "export the wire contract as JSON Schema"),
    "ingest": ("services.cli.ingest", "validate ticks from a file and publish them to Kafka"),
    "history": ("services.cli.history", "daily bars: fetch from a source, load into the processor"),
    "process": ("services.cli.process", "run the faust-streaming detector worker"),
    "alert": ("services.cli.alert", "deliver signals from Kafka to Redis subscribers"),
    "tail": ("services.cli.tail", "print alerts live as a subscriber sees them"),
    "subscribe": ("services.cli.subscribe", "create an alert subscription, then tail it"),
    "subscriptions": (
        "services.cli.subscriptions",
        "list, show or delete subscriptions and their price levels",
    ),
    "status": ("services.cli.status", "report each component: up or down, address, lag"),
}


def _load(name: str) -> Command:
    return cast(Command, importlib.import_module(COMMANDS[name][0]))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketsignal", description="Market signals: record highs and index divergences."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    try:
        return _load(args.command).run(args)
    except RulesError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"marketsignal: {settings_problem(exc)}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # Settings come from the environment: name the variable, never echo its value.
        print(f"marketsignal: {settings_problem(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
