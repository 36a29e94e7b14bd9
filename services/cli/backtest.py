"""`marketsignal backtest FILE|- [--config F] [--history BARS] [--levels LEVELS] [--format F]
[--strict]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.backtest.chart_data import DEFAULT_LIMIT, ChartData
from services.backtest.levels import LevelsFileError, read_levels
from services.backtest.run import StrictStop, run_backtest
from services.cli.options import add_config_option, add_format_option
from services.parsing.feed import FeedError, stdin_text
from services.runtime.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, help="ticks as CSV (with a header) or JSON Lines; - for standard input"
    )
    add_config_option(parser)
    parser.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="BARS",
        help="daily bars (CSV or JSON Lines: symbol,date,high,close) applied before FILE",
    )
    parser.add_argument(
        "--levels",
        type=Path,
        default=None,
        metavar="LEVELS",
        help='price levels armed before the first tick: JSON Lines of {"level_id", "symbol", '
        '"above"} or "below"',
    )
    add_format_option(parser)
    parser.add_argument(
        "--strict", action="store_true", help="stop with exit 2 at the first malformed or late line"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="DIR",
        help="also write one PNG chart per subject that fired into DIR",
    )
    parser.add_argument(
        "--plot-symbols",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        metavar="LIST",
        help=(
            "with --plot: chart these subjects (symbols, globs like *.HK, pairs A/B) instead "
            "of the default: every pair and listing that fired, then the symbols' charts "
            "taken in turn (price_level, limit_hit, price_move, volume_spike, record_high), "
            f"{DEFAULT_LIMIT} charts in all"
        ),
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_config(args.config)
    rules = settings.rules()
    from_stdin = str(args.file) == "-"
    optional = [p for p in (args.history, args.levels) if p is not None]
    for path in [args.file] * (not from_stdin) + optional:
        if not path.is_file():
            print(f"marketsignal: {path}: no such file", file=sys.stderr)
            return 2
    try:
        levels = None if args.levels is None else read_levels(args.levels)
    except (LevelsFileError, UnicodeDecodeError) as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 2
    charts = ChartData(rules) if args.plot is not None else None
    try:
        summary = run_backtest(
            Path("<stdin>") if from_stdin else args.file,
            rules,
            sys.stdout.buffer,
            sys.stderr,
            strict=args.strict,
            progress=args.progress,
            history=args.history,
            stream=stdin_text() if from_stdin else None,
            fmt=args.format,
            charts=charts,
            levels=levels,
        )
    except StrictStop as exc:
        sys.stdout.flush()
        print(f"marketsignal: stopped (--strict) at {exc}", file=sys.stderr)
        return 2
    except FeedError as exc:
        print(f"marketsignal: {args.file}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    print(summary.render(), file=sys.stderr)
    if charts is not None:
        from services.backtest.charts import write_charts  # noqa: PLC0415 - matplotlib: only when asked

        for path in write_charts(charts, args.plot, args.plot_symbols):
            print(f"chart: {path}", file=sys.stderr)
    return 0
