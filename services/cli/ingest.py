"""`marketsignal ingest`: ticks from a file, standard input, a followed file or a WebSocket
feed, validated, into Kafka (bad or late ones to the dead-letter topic).

    marketsignal ingest FILE [--rate N | --speed X]     replay a file, then exit
    marketsignal ingest - [--format csv|jsonl]          standard input until EOF or SIGTERM
    marketsignal ingest FILE --follow                   tail -F, resumable, until SIGTERM
    marketsignal ingest --ws URL [--subscribe F] ...    a WebSocket feed, until SIGTERM
    marketsignal ingest --ws URL --adapter polygon --symbols AAPL,MSFT
                                                        a vendor's feed, logged in with the
                                                        key from the environment (feeds.md)
    marketsignal ingest --yahoo 0700.HK,600519.SS       Yahoo's streamer (the yahoo extra)
    marketsignal ingest --akshare --codes 600519,00700 --every 3s
                                                        quotes polled through akshare
    marketsignal ingest --futu 127.0.0.1:11111 --codes HK.00700,SH.600519
                                                        OpenD's ticker push (the futu extra)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import NamedTuple

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from services.cli.options import add_config_option, add_format_option
from services.ingestor.adapters import BUILT_IN, handshake
from services.ingestor.adapters.base import (
    Adapter,
    Handshake,
    LoginRefusedError,
    parse_symbols,
)
from services.ingestor.adapters.yahoo import STREAMER_URL, YahooPricing, protobuf_decoder
from services.ingestor.adapters.yahoo import handshake as yahoo_handshake
from services.ingestor.akshare_quotes import AkshareSnapshots, Fetch, akshare_fetch, parse_codes
from services.ingestor.extras import MissingExtraError, load_function, require
from services.ingestor.follow import (
    FollowedFile,
    default_position_file,
    load_position,
    save_position,
)
from services.ingestor.futu_push import (
    FutuError,
    FutuOptions,
    FutuSource,
    parse_address,
    parse_futu_codes,
)
from services.ingestor.futu_tickers import FutuTickers
from services.ingestor.ingest import IngestSummary, Sink, ingest_records
from services.ingestor.metrics import IngestMetrics, MeteredSink
from services.ingestor.pacing import Pacer, min_sleep_for
from services.ingestor.polling import Mapper, PollOptions, SnapshotPoller
from services.ingestor.publish import BundleOptions, Publisher
from services.ingestor.screening import Screener
from services.ingestor.source_metrics import CountedSink, SourceMetrics
from services.ingestor.source_metrics import readiness as source_readiness
from services.ingestor.symbols import SymbolMap, load_overrides
from services.parsing.feed import (
    FeedError,
    RawRecord,
    read_records,
    read_stream,
    stdin_text,
)
from services.runtime.heap import freeze_heap
from services.runtime.kafka_admin import BrokerUnavailableError, ensure_topics
from services.runtime.log_flood import install as count_repeats
from services.runtime.observability import LOG_FORMAT, Readiness, ReadyFlag, all_of, serve
from services.runtime.settings import Settings
from services.runtime.write_health import WriteHealth


class Stopped(Exception):  # noqa: N818 - a request, not an error
    """SIGTERM while blocked reading standard input."""


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


def _duration(text: str) -> float:
    """`3s`, `500ms`, `1m` or a number of seconds -> seconds, > 0."""
    for unit in sorted(_DURATION_UNITS, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)]:
            return _positive(text[: -len(unit)]) * _DURATION_UNITS[unit]
    return _positive(text)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        type=Path,
        nargs="?",
        help="ticks as CSV (with a header) or JSON Lines; - for standard input",
    )
    add_config_option(parser)
    add_format_option(parser)
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=_positive, help="publish at most N ticks per second")
    pace.add_argument(
        "--speed", type=_positive, help="replay at X times event-time speed (ts gaps / X)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics, /healthz, /readyz here while the ingestor runs "
        "(default: $MARKETSIGNAL_INGESTOR_METRICS_PORT, 9101; 0: any free port; -1: none)",
    )
    bundles = parser.add_argument_group("tick bundles (many ticks per Kafka record)")
    bundles.add_argument(
        "--bundle-ms",
        type=_positive,
        default=None,
        help="a partition's ticks within this many ms share one record "
        "(default: $MARKETSIGNAL_INGEST_BUNDLE_MS, 20)",
    )
    bundles.add_argument(
        "--bundle-max",
        type=int,
        default=None,
        help="at most this many ticks per record (default: $MARKETSIGNAL_INGEST_BUNDLE_MAX, 500)",
    )
    bundles.add_argument(
        "--no-bundle", action="store_true", help="one tick per record, as other producers send"
    )
    follow = parser.add_argument_group("following a file (tail -F)")
    follow.add_argument(
        "--follow", action="store_true", help="keep reading FILE as it grows, until SIGTERM"
    )
    follow.add_argument(
        "--position-file",
        type=Path,
        default=None,
        help="where --follow remembers how far it delivered "
        "(default: under $MARKETSIGNAL_STATE_DIR/follow/)",
    )
    ws = parser.add_argument_group("WebSocket feed")
    ws.add_argument("--ws", metavar="URL", default=None, help="read ticks from this feed")
    ws.add_argument(
        "--subscribe",
        type=Path,
        default=None,
        metavar="FILE",
        help="a file whose text is sent on each connect (after a built-in adapter's login)",
    )
    ws.add_argument(
        "--adapter",
        default=None,
        metavar="NAME|MODULE:FUNCTION",
        help="maps each decoded JSON message to ticks: NAME, a built-in adapter ("
        + "; ".join(f"{name}: {text}" for name, (_, text) in BUILT_IN.items())
        + "; docs/feeds.md), or MODULE:FUNCTION, a function of yours "
        "(default: object = tick, array = ticks)",
    )
    ws.add_argument(
        "--symbol-map",
        type=Path,
        default=None,
        metavar="FILE",
        help="source=canonical lines that rename the symbols of a built-in adapter or source "
        "(--yahoo, --akshare, --futu), before its rules (HK.00700 -> 0700.HK, "
        "600519.SS -> 600519.SH, ...; docs/feeds.md)",
    )
    ws.add_argument(
        "--symbols",
        default=None,
        metavar="LIST",
        help="a built-in adapter subscribes to the trades of these symbols, spelt as the "
        "vendor does, comma-separated (AAPL,MSFT; * for all), after logging in",
    )
    ws.add_argument(
        "--no-login",
        action="store_true",
        help="a built-in adapter sends no credentials (a relay or replay that needs none); "
        "by default it logs in with $MARKETSIGNAL_POLYGON_API_KEY, or "
        "$MARKETSIGNAL_ALPACA_KEY_ID and $MARKETSIGNAL_ALPACA_SECRET_KEY",
    )
    sources = parser.add_argument_group("built-in sources (docs/feeds.md)")
    sources.add_argument(
        "--yahoo",
        default=None,
        metavar="SYMBOLS",
        help="Yahoo Finance's streamer, as yfinance reads it: Yahoo's symbols, "
        "comma-separated (0700.HK,600519.SS,^HSI), mapped to canonical ones "
        "(600519.SS -> 600519.SH); --ws URL names another streamer; needs "
        "pip install 'marketsignal[yahoo]'",
    )
    sources.add_argument(
        "--akshare",
        action="store_true",
        help="poll quotes through akshare (--codes, --every): a tick when a code's price or "
        "day volume changed; needs pip install 'marketsignal[akshare]'",
    )
    sources.add_argument(
        "--futu",
        default=None,
        metavar="HOST:PORT",
        help="Futu/moomoo OpenD's tick-by-tick push for --codes (HK.00700,SH.600519), "
        "through futu-api; needs pip install 'marketsignal[futu]'",
    )
    sources.add_argument(
        "--codes",
        default=None,
        metavar="LIST",
        help="comma-separated; --akshare: exchange codes, 600519 (Shanghai), 000001 "
        "(Shenzhen), 00700 (Hong Kong); --futu: Futu's, HK.00700, SH.600519, SZ.000001",
    )
    sources.add_argument(
        "--every",
        type=_duration,
        default=3.0,
        metavar="DURATION",
        help="--akshare: poll this often (3s; 500ms, 1m, or seconds)",
    )
    ws.add_argument("--ping-interval", type=_positive, default=20.0, help="seconds (20)")
    ws.add_argument("--ping-timeout", type=_positive, default=20.0, help="seconds (20)")
    ws.add_argument(
        "--backoff-initial",
        type=_positive,
        default=0.5,
        help="seconds before the first reconnect (--ws, --yahoo) or retry of a failed poll "
        "(--akshare), doubling up to --backoff-max (0.5)",
    )
    ws.add_argument("--backoff-max", type=_positive, default=30.0, help="seconds (30)")
    ws.add_argument(
        "--max-in-flight",
        type=int,
        default=10_000,
        help="stop reading (a live source) while this many records await Kafka's "
        "acknowledgement (10000)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    count_repeats()  # a client library's retries in an outage: counted, not printed
    # Broker trouble is reported once, below, as a clear message: not as retry chatter.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    yahoo, akshare, futu = args.yahoo is not None, args.akshare, args.futu is not None
    problem = _source_problem(args)
    if problem is not None:
        print(f"marketsignal: {problem}", file=sys.stderr)
        return 2
    from_stdin = args.file is not None and str(args.file) == "-"
    if args.follow and (args.file is None or from_stdin):
        print("marketsignal: --follow needs a FILE", file=sys.stderr)
        return 2
    built_in = yahoo or akshare or futu or (args.adapter is not None and ":" not in args.adapter)
    for option, given in (
        ("--symbol-map", args.symbol_map is not None),
        ("--symbols", args.symbols is not None),
        ("--no-login", args.no_login),
    ):
        if given and not built_in:
            print(
                f"marketsignal: {option} applies to a built-in adapter "
                f"(--adapter {'|'.join(BUILT_IN)})",
                file=sys.stderr,
            )
            return 2
    adapter: Adapter | None = None
    login: Handshake | None = None
    polled: Polled | None = None
    pushed: Pushed | None = None
    settings = Settings.for_config(args.config)
    if futu:
        # Before Kafka, as below.
        try:
            pushed = _futu(args)
        except (ValueError, MissingExtraError) as exc:
            print(f"marketsignal: {exc}", file=sys.stderr)
            return 2
    elif akshare:
        # Before Kafka, as below.
        try:
            polled = _akshare(args, settings)
        except (ValueError, MissingExtraError) as exc:
            print(f"marketsignal: {exc}", file=sys.stderr)
            return 2
    elif yahoo:
        # Before Kafka, as below: a missing extra or a bad symbol list is the user's to fix.
        try:
            adapter, login = _yahoo(args)
        except (ValueError, MissingExtraError) as exc:
            print(f"marketsignal: {exc}", file=sys.stderr)
            return 2
    elif args.ws:
        # Before Kafka: a misspelt adapter or a bad symbol map is the user's to fix first.
        try:
            adapter = _adapter(args)
        except ValueError as exc:
            print(f"marketsignal: {exc}", file=sys.stderr)
            return 2
    if args.bundle_max is not None and args.bundle_max < 1:
        print("marketsignal: --bundle-max must be at least 1", file=sys.stderr)
        return 2
    if args.ws and built_in and not yahoo:
        # Also before Kafka: a missing key is as much the user's to fix.
        try:
            login = _handshake(args, settings)
        except ValueError as exc:
            print(f"marketsignal: {exc}", file=sys.stderr)
            return 2
    rules = settings.rules()
    path: Path | None = args.file
    if path is not None and not from_stdin and not args.follow and not path.is_file():
        print(f"marketsignal: {path}: no such file", file=sys.stderr)
        return 2
    source = args.ws if args.ws else "<stdin>" if from_stdin else str(path)
    if yahoo:
        source = args.ws = args.ws or STREAMER_URL
    elif akshare:
        source = "akshare"
    elif futu:
        source = f"futu://{args.futu}"
    screener = Screener(
        rules.exchange_zones(), rules.ticks.allowed_lateness_s, source, lambda: datetime.now(UTC)
    )
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    port = settings.ingestor_metrics_port if args.metrics_port is None else args.metrics_port
    # Ready once the producer is connected; a batch job has nothing else to wait for, a
    # live feed its source too.
    ready = ReadyFlag("connecting to Kafka")
    live: SourceMetrics | None = None
    readiness: Readiness = ready
    if adapter is not None or polled is not None or pushed is not None:
        live = SourceMetrics(registry, _source_name(args))
        readiness = source_readiness(ready, live)
    # Whether the cluster takes the ticks: not ready, with the reason, while it does not.
    health = WriteHealth(settings, [settings.ticks_topic, settings.dlq_topic], registry)
    readiness = all_of(readiness, health)
    server = (
        serve("ingest", registry, settings.metrics_host, port, readiness) if port >= 0 else None
    )
    try:
        return _ingest(
            args, settings, screener, metrics, ready, adapter, login, polled, pushed, live, health
        )
    finally:
        health.stop()
        if server is not None:
            server.stop()


def _ingest(
    args: argparse.Namespace,
    settings: Settings,
    screener: Screener,
    metrics: IngestMetrics,
    ready: ReadyFlag,
    adapter: Adapter | None,
    login: Handshake | None,
    polled: Polled | None,
    pushed: Pushed | None,
    live: SourceMetrics | None,
    health: WriteHealth,
) -> int:
    started = time.perf_counter()
    try:
        ensure_topics(
            settings,
            [settings.ticks_topic, settings.dlq_topic, settings.signals_topic],
            settings.partitions,
        )
        publisher = Publisher(settings, metrics, bundle_options(args, settings))
        health.probes = (publisher.stalled,)
        health.start()
        freeze_heap()
        ready.set(True, "producer connected")
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    sink = MeteredSink(publisher, metrics)
    live_sink: Sink = sink if live is None else CountedSink(sink, live)
    try:
        if pushed is not None:
            summary = _futu_push(pushed, screener, live_sink, publisher, live)
        elif polled is not None:
            summary = _poll(args, polled, screener, live_sink, publisher, live)
        elif adapter is not None:
            summary = _websocket(
                args, settings, adapter, login, screener, live_sink, publisher, metrics, live
            )
        else:
            summary = _lines(args, settings, screener, sink, publisher)
        publisher.flush()
    except FeedError as exc:
        print(f"marketsignal: {screener.source}: {exc}", file=sys.stderr)
        publisher.close()
        return 2
    except ValueError as exc:  # an unusable argument found late
        print(f"marketsignal: {exc}", file=sys.stderr)
        publisher.close()
        return 2
    except (LoginRefusedError, FutuError) as exc:
        # A wrong key will not fix itself: stop, with what was published delivered.
        publisher.flush()
        publisher.close()
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"marketsignal: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        publisher.close(timeout_s=1.0)
        return 1
    except KeyboardInterrupt:
        # What was sent is in the producer's buffer: deliver it, then stop.
        publisher.flush()
        publisher.close()
        print("marketsignal: interrupted", file=sys.stderr)
        return 130
    publisher.close()
    summary.failed = publisher.failed
    # Wall time from connect to last acknowledgement: what a user waits for.
    summary.seconds = time.perf_counter() - started
    print(summary.render(), file=sys.stderr)
    if publisher.failed:
        print(f"marketsignal: delivery failed: {publisher.first_error}", file=sys.stderr)
        return 1
    return 0


def bundle_options(args: argparse.Namespace, settings: Settings) -> BundleOptions | None:
    if args.no_bundle or not settings.ingest_bundle:
        return None
    return BundleOptions(
        window_ms=args.bundle_ms if args.bundle_ms is not None else settings.ingest_bundle_ms,
        max_ticks=args.bundle_max if args.bundle_max is not None else settings.ingest_bundle_max,
    )


def _on_sigterm(handler: Callable[[], None]) -> None:
    def handle(_signum: int, _frame: FrameType | None) -> None:
        handler()

    signal.signal(signal.SIGTERM, handle)


def _lines(
    args: argparse.Namespace,
    settings: Settings,
    screener: Screener,
    sink: MeteredSink,
    publisher: Publisher,
) -> IngestSummary:
    bundle = publisher.bundle
    pacer = Pacer(
        rate=args.rate,
        speed=args.speed,
        min_sleep_s=min_sleep_for(bundle.window_ms if bundle is not None else None),
    )
    path: Path = args.file
    summary = IngestSummary()
    if args.follow:
        stop = threading.Event()
        _on_sigterm(stop.set)  # checked between lines: a clean stop, position saved
        position_file = args.position_file or default_position_file(settings.state_dir, path)
        follower = FollowedFile(path, args.format, stop, resume=load_position(position_file))

        def checkpoint() -> None:
            publisher.flush()
            if follower.position is not None and not publisher.failed:
                save_position(position_file, follower.position)

        return ingest_records(
            follower.records(), screener, pacer, sink, checkpoint=checkpoint, summary=summary
        )

    def stopped() -> None:
        raise Stopped

    _on_sigterm(stopped)  # a blocking read of standard input must be interrupted
    records: Iterable[RawRecord | None] = (
        read_stream(stdin_text(), None, args.format)
        if str(path) == "-"
        else read_records(path, args.format)
    )
    with contextlib.suppress(Stopped):  # what was read is sent: the caller flushes
        ingest_records(records, screener, pacer, sink, summary=summary)
    return summary


def _adapter(args: argparse.Namespace) -> Adapter:
    """--adapter (and --symbol-map) resolved; ValueError saying what is wrong."""
    # Imported here: only --ws needs the websockets library.
    from services.ingestor.websocket import default_adapter, load_adapter  # noqa: PLC0415

    if not args.adapter:
        return default_adapter
    symbols = _symbol_map(args)
    return load_adapter(args.adapter, symbols)


def _symbol_map(args: argparse.Namespace) -> SymbolMap:
    """The built-in rules, after --symbol-map's lines if given; ValueError if unusable."""
    return SymbolMap(load_overrides(args.symbol_map) if args.symbol_map else None)


def _yahoo(args: argparse.Namespace) -> tuple[Adapter, Handshake]:
    """--yahoo's adapter (yfinance's protobuf decoding) and subscription; ValueError or
    MissingExtraError saying what is wrong."""
    symbols = parse_symbols(args.yahoo, "--yahoo", "0700.HK,600519.SS")
    adapter = YahooPricing(_symbol_map(args), protobuf_decoder())
    return adapter, yahoo_handshake(symbols)


def _handshake(args: argparse.Namespace, settings: Settings) -> Handshake:
    """A built-in adapter's login and subscription; ValueError saying what is missing."""
    symbols = parse_symbols(args.symbols) if args.symbols is not None else ()
    if not symbols and args.subscribe is None and not args.no_login:
        # Logged in and subscribed to nothing, a vendor's feed sends nothing: say so now.
        raise ValueError(
            f"--adapter {args.adapter} logs in, then subscribes to --symbols "
            "(e.g. --symbols AAPL,MSFT) or sends --subscribe FILE: give one"
        )
    return handshake(args.adapter, settings, symbols, log_in=not args.no_login)


def _websocket(
    args: argparse.Namespace,
    settings: Settings,
    adapter: Adapter,
    login: Handshake | None,
    screener: Screener,
    sink: Sink,
    publisher: Publisher,
    metrics: IngestMetrics,
    live: SourceMetrics | None,
) -> IngestSummary:
    # Imported here: only --ws needs the websockets library.
    from services.ingestor.websocket import WsOptions, run_feed  # noqa: PLC0415

    options = WsOptions(
        url=args.ws,
        subscribe=args.subscribe.read_text(encoding="utf-8") if args.subscribe else None,
        adapter=adapter,
        handshake=login,
        login_timeout_s=settings.ws_login_timeout_s,
        ping_interval_s=args.ping_interval,
        ping_timeout_s=args.ping_timeout,
        backoff_initial_s=args.backoff_initial,
        backoff_max_s=args.backoff_max,
        max_in_flight=args.max_in_flight,
    )
    return run_feed(options, screener, sink, lambda: publisher.in_flight, metrics, live)


class Polled(NamedTuple):
    """--akshare resolved: what fetches, which codes, how a row becomes a tick."""

    fetch: Fetch
    codes: tuple[str, ...]
    mapper: Mapper


def _akshare(args: argparse.Namespace, settings: Settings) -> Polled:
    """--akshare's fetch (akshare's, or MARKETSIGNAL_AKSHARE_FETCH's), codes and mapping;
    ValueError or MissingExtraError saying what is wrong."""
    symbols = _symbol_map(args)
    codes = parse_codes(args.codes, symbols)
    if settings.akshare_fetch:
        spec = settings.akshare_fetch
        fetch: Fetch = load_function(spec, f"MARKETSIGNAL_AKSHARE_FETCH {spec!r}")()
    else:
        fetch = akshare_fetch()
    return Polled(fetch, codes, AkshareSnapshots(symbols))


def _poll(
    args: argparse.Namespace,
    polled: Polled,
    screener: Screener,
    sink: Sink,
    publisher: Publisher,
    live: SourceMetrics | None,
) -> IngestSummary:
    options = PollOptions(
        every_s=args.every,
        backoff_initial_s=args.backoff_initial,
        backoff_max_s=args.backoff_max,
        max_in_flight=args.max_in_flight,
    )
    poller = SnapshotPoller(
        polled.fetch,
        polled.codes,
        polled.mapper,
        options,
        screener,
        sink,
        lambda: publisher.in_flight,
        live,
    )
    _on_sigterm(poller.stop)  # checked between polls: the poll in hand is delivered
    signal.signal(signal.SIGINT, lambda _signum, _frame: poller.stop())
    return poller.run()


class Pushed(NamedTuple):
    """--futu resolved: where OpenD is, which codes, how a ticker row becomes a tick."""

    options: FutuOptions
    mapper: FutuTickers


def _futu(args: argparse.Namespace) -> Pushed:
    """--futu's address, codes and mapping; ValueError or MissingExtraError saying what is
    wrong (the extra is looked for now, before Kafka)."""
    host, port = parse_address(args.futu)
    symbols = _symbol_map(args)
    codes = parse_futu_codes(args.codes, symbols)
    require("futu", "futu", "--futu")
    options = FutuOptions(host=host, port=port, codes=codes, max_in_flight=args.max_in_flight)
    return Pushed(options, FutuTickers(symbols))


def _futu_push(
    pushed: Pushed,
    screener: Screener,
    sink: Sink,
    publisher: Publisher,
    live: SourceMetrics | None,
) -> IngestSummary:
    feed = FutuSource(
        pushed.options, pushed.mapper, screener, sink, lambda: publisher.in_flight, live
    )
    _on_sigterm(feed.stop)
    signal.signal(signal.SIGINT, lambda _signum, _frame: feed.stop())
    return feed.run()


def _source_problem(args: argparse.Namespace) -> str | None:
    """Why the sources given do not go together, if they don't."""
    yahoo, akshare, futu = args.yahoo is not None, args.akshare, args.futu is not None
    built_in = [
        name
        for name, given in (("--yahoo", yahoo), ("--akshare", akshare), ("--futu", futu))
        if given
    ]
    if len(built_in) > 1:
        return f"give one of {', '.join(built_in)}"
    name = built_in[0] if built_in else None
    if (akshare or futu) and (args.file is not None or args.ws is not None):
        return f"{name} reads its own source: no FILE and no --ws"
    if yahoo and args.file is not None:
        return "give a FILE or --yahoo, not both"
    if name is None and (args.file is None) == (args.ws is None):
        return (
            "give a FILE (or - for standard input), --ws URL, --yahoo SYMBOLS, --akshare "
            "or --futu HOST:PORT"
        )
    if not (akshare or futu) and args.codes is not None:
        return "--codes is --akshare's or --futu's"
    if (akshare or futu) and args.codes is None:
        example = "600519,00700" if akshare else "HK.00700,SH.600519"
        return f"{name} reads --codes: give them (e.g. --codes {example})"
    for option, given in (
        ("--adapter", args.adapter is not None),
        ("--symbols", args.symbols is not None),
        ("--no-login", args.no_login),
        ("--subscribe", (akshare or futu) and args.subscribe is not None),
    ):
        if given and name is not None:
            return f"{name} has its own adapter: no {option}"
    return None


def _source_name(args: argparse.Namespace) -> str:
    """The `source` label of a live feed's metrics."""
    if args.yahoo is not None:
        return "yahoo"
    if args.akshare:
        return "akshare"
    if args.futu is not None:
        return "futu"
    if args.adapter is not None and ":" not in args.adapter:
        return str(args.adapter)
    return "ws"
