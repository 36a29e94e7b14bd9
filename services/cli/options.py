"""Options and error reporting shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="rules file (TOML); defaults to $MARKETSIGNAL_CONFIG, else built-in defaults",
    )
