"""`marketsignal schemas export DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas.export import export


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export"])
    parser.add_argument("directory", type=Path)


def run(args: argparse.Namespace) -> int:
    for path in export(args.directory):
        print(path)
    return 0
