"""The `marketsignal` command: one subcommand per service or tool."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, cast

from services.detection.rules import RulesError


class Command(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module, one-line help). Modules are imported only when their command runs,
# so `marketsignal backtest` never loads Kafka or Faust.
COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("services.backtest.command", "run the detectors on a CSV or JSONL file"),
    "schemas": ("services.schemas_command", "export the wire contract as JSON Schema"),
    "ingest": ("services.ingestor.command", "validate ticks from a file and publish them to Kafka"),
    "history": ("services.history_command", "load daily bars (history) into the processor"),
    "process": ("services.processor.command", "run the faust-streaming detector worker"),
    "alert": ("services.alerter.command", "deliver signals from Kafka to Redis subscribers"),
    "tail": ("services.alerter.tail", "print alerts live as a subscriber sees them"),
    "subscribe": ("services.subscribe_command", "create an alert subscription, then tail it"),
    "subscriptions": ("services.subscriptions_command", "list, show or delete subscriptions"),
    "status": ("services.status", "report each component: up or down, address, lag"),
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


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="rules file (TOML); defaults to $MARKETSIGNAL_CONFIG, else built-in defaults",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    try:
        return _load(args.command).run(args)
    except RulesError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
