"""Options and error reporting shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.parsing.feed import FORMATS


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="rules file (TOML); defaults to $MARKETSIGNAL_CONFIG, else built-in defaults",
    )


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """--format of an input file (ticks or bars) whose name does not tell."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="input format when the file name does not tell (default: sniffed)",
    )
