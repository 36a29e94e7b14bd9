"""Which subscriptions want an alert: the filter predicate and an index over it. Pure.

`accepts` is the definition. `SubscriptionIndex.match` gives the same answer without a
scan of every subscription: subscriptions are indexed by kind and then by the literal
part of each symbol pattern: an exact symbol; else its longest literal run, as a prefix
(`60000*` under `60000`), a suffix (`*.HK`) or a substring (`*0042?.HK` under `0042`,
found by looking up every substring of the symbol, at most 528 for 32 characters). Only
patterns with no literal at all (`*`, `???*`) and filters with no symbol or pair (pairs:
divergences and A/H premiums) are
looked at for every alert of their kind, and those with no condition at all for that
kind (match-all) are taken without a check. The candidates are checked with `accepts`,
so the index can only ever narrow, never change, the answer (a property test compares it
with a scan on random subscriptions and alerts). Subscriptions are added and removed one
at a time, so a registry change costs one subscription's work, not a rebuild.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import defaultdict
from collections.abc import Iterable

from schemas.signals import (
    SIGNAL_KINDS,
    AhPremium,
    AnySignal,
    IndexDivergence,
    LimitHit,
    PriceLevel,
    PriceMove,
    RecordHigh,
    VolumeSpike,
)
from schemas.subscription import Filters, Subscription

_WILD = frozenset("*?")
# `directions` and `phases` hold the values of several kinds; each kind is restricted only
# by the values of its own vocabulary (a filter that names none of them leaves it alone).
_PAIR_DIRECTIONS = frozenset(("a_over_b", "b_over_a"))
_MOVE_DIRECTIONS = frozenset(("up", "down"))
_PAIR_PHASES = frozenset(("open", "close"))
_LIMIT_PHASES = frozenset(("sealed", "opened"))
_PAIR_KINDS = frozenset({"index_divergence", "ah_premium"})


def symbol_matches(pattern: str, symbol: str) -> bool:
    """Case-sensitive glob: `*` any run of characters, `?` one (no `[...]` classes)."""
    if not _WILD.intersection(pattern):
        return pattern == symbol
    return fnmatch.fnmatchcase(symbol, pattern)  # the schema allows no `[` in a pattern


def _of(values: tuple[str, ...], vocabulary: frozenset[str]) -> tuple[str, ...]:
    return tuple(v for v in values if v in vocabulary)


def _pair_accepted(filters: Filters, pair: str, legs: tuple[str, str], phase: str) -> bool:
    """The filters a divergence and an A/H premium share: either leg, the pair, the phase."""
    if filters.symbols and not any(symbol_matches(p, leg) for p in filters.symbols for leg in legs):
        return False
    if filters.pairs and pair not in filters.pairs:
        return False
    phases = _of(filters.phases, _PAIR_PHASES)
    return not (phases and phase not in phases)


def accepts(filters: Filters, signal: AnySignal) -> bool:
    if isinstance(signal, PriceLevel):
        # A level's firing goes to the subscription that set it, whatever its filters
        # (services/subscriptions/fanout.py), and to no other: filters never select one.
        return False
    if filters.kinds and signal.kind not in filters.kinds:
        return False
    if isinstance(signal, RecordHigh):
        if filters.symbols and not any(symbol_matches(p, signal.symbol) for p in filters.symbols):
            return False
        if filters.windows and signal.window not in filters.windows:
            return False
        return filters.min_change_pct is None or signal.change_pct >= filters.min_change_pct
    if isinstance(signal, AhPremium):
        if not _pair_accepted(filters, signal.pair, (signal.a, signal.h), signal.phase):
            return False
        return filters.min_premium_pct is None or (
            abs(signal.premium_pct) >= filters.min_premium_pct
        )
    if not isinstance(signal, IndexDivergence):
        return _day_move_accepted(filters, signal)
    if not _pair_accepted(filters, signal.pair, (signal.a, signal.b), signal.phase):
        return False
    directions = _of(filters.directions, _PAIR_DIRECTIONS)
    if directions and signal.direction not in directions:
        return False
    if filters.divergence_windows and signal.window not in filters.divergence_windows:
        return False
    return filters.min_spread_pp is None or abs(signal.spread_pp) >= filters.min_spread_pp


def _day_move_accepted(filters: Filters, signal: PriceMove | LimitHit | VolumeSpike) -> bool:
    """price_move, limit_hit and volume_spike: the symbol, and each kind's own filters."""
    if filters.symbols and not any(symbol_matches(p, signal.symbol) for p in filters.symbols):
        return False
    if isinstance(signal, VolumeSpike):
        return filters.min_multiple is None or signal.multiple >= filters.min_multiple
    directions = _of(filters.directions, _MOVE_DIRECTIONS)
    if directions and signal.direction not in directions:
        return False
    if isinstance(signal, LimitHit):
        phases = _of(filters.phases, _LIMIT_PHASES)
        return not (phases and signal.phase not in phases)
    return filters.min_level_pct is None or signal.level_pct >= filters.min_level_pct


def _literal_key(pattern: str) -> tuple[str, str]:
    """Where a pattern is indexed: (table, key); table "" means it has no literal.

    The longest literal run wins (the most selective); on a tie a prefix, then a suffix,
    is preferred (fewer lookups per alert than a substring).
    """
    wild = [i for i, c in enumerate(pattern) if c in _WILD]
    if not wild:
        return "symbol", pattern
    options: list[tuple[int, int, str, str]] = []
    if wild[0] > 0:
        options.append((wild[0], 2, "prefix", pattern[: wild[0]]))
    if wild[-1] < len(pattern) - 1:
        options.append((len(pattern) - wild[-1] - 1, 1, "suffix", pattern[wild[-1] + 1 :]))
    for a, b in itertools.pairwise(wild):
        if b > a + 1:
            options.append((b - a - 1, 0, "infix", pattern[a + 1 : b]))
    if not options:
        return "", ""
    _, _, table, key = max(options)
    return table, key


def _unconditional(filters: Filters, kind: str) -> bool:
    """True if `filters` accepts every alert of `kind` (its `kinds` admitting the kind)."""
    f = filters
    if f.symbols:
        return False
    if kind == "record_high":
        return not f.windows and f.min_change_pct is None
    if kind == "ah_premium":
        return not f.pairs and not _of(f.phases, _PAIR_PHASES) and f.min_premium_pct is None
    if kind == "price_move":
        return not _of(f.directions, _MOVE_DIRECTIONS) and f.min_level_pct is None
    if kind == "limit_hit":
        return not _of(f.directions, _MOVE_DIRECTIONS) and not _of(f.phases, _LIMIT_PHASES)
    if kind == "volume_spike":
        return f.min_multiple is None
    return (
        not f.pairs
        and not _of(f.phases, _PAIR_PHASES)
        and not _of(f.directions, _PAIR_DIRECTIONS)
        and not f.divergence_windows
        and f.min_spread_pp is None
    )


Bucket = dict[str, Subscription]


class _KindIndex:
    __slots__ = ("all", "by", "scan")

    def __init__(self) -> None:
        # table -> key -> {id: subscription}; dicts keep removal O(1).
        self.by: dict[str, dict[str, Bucket]] = {
            t: defaultdict(dict) for t in ("symbol", "prefix", "suffix", "infix", "pair")
        }
        self.scan: Bucket = {}
        self.all: Bucket = {}

    def _places(self, sub: Subscription, kind: str) -> list[tuple[str, str]]:
        f = sub.filters
        if f.symbols:
            return [_literal_key(p) for p in f.symbols]
        if kind in _PAIR_KINDS and f.pairs:
            return [("pair", p) for p in f.pairs]
        return [("all", "")] if _unconditional(f, kind) else [("", "")]

    def add(self, sub: Subscription, kind: str) -> None:
        for table, key in self._places(sub, kind):
            if table == "all":
                self.all[sub.id] = sub
            elif table == "":
                self.scan[sub.id] = sub
            else:
                self.by[table][key][sub.id] = sub

    def remove(self, sub: Subscription, kind: str) -> None:
        for table, key in self._places(sub, kind):
            if table == "all":
                self.all.pop(sub.id, None)
            elif table == "":
                self.scan.pop(sub.id, None)
            else:
                bucket = self.by[table].get(key)
                if bucket is not None:
                    bucket.pop(sub.id, None)
                    if not bucket:
                        del self.by[table][key]

    def candidates(self, symbols: Iterable[str], pair: str | None) -> Iterable[Subscription]:
        yield from self.scan.values()
        by = self.by
        if pair is not None:
            yield from by["pair"].get(pair, {}).values()
        for symbol in symbols:
            yield from by["symbol"].get(symbol, {}).values()
            n = len(symbol)
            if by["suffix"]:
                for i in range(n):
                    yield from by["suffix"].get(symbol[i:], {}).values()
            if by["prefix"]:
                for i in range(1, n + 1):
                    yield from by["prefix"].get(symbol[:i], {}).values()
            infix = by["infix"]
            if infix:
                for i in range(n):
                    for j in range(i + 1, n + 1):
                        bucket = infix.get(symbol[i:j])
                        if bucket:
                            yield from bucket.values()


class SubscriptionIndex:
    """The subscriptions, indexed; `add` and `remove` apply one change at a time."""

    def __init__(self, subscriptions: Iterable[Subscription] = ()) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self._kinds: dict[str, _KindIndex] = {k: _KindIndex() for k in SIGNAL_KINDS}
        for sub in subscriptions:
            self.add(sub)

    def __len__(self) -> int:
        return len(self.subscriptions)

    def add(self, sub: Subscription) -> None:
        """Add `sub`, replacing the subscription of the same id if there is one."""
        self.remove(sub.id)
        self.subscriptions[sub.id] = sub
        for kind in sub.filters.kinds or SIGNAL_KINDS:
            self._kinds[kind].add(sub, kind)

    def remove(self, sub_id: str) -> None:
        old = self.subscriptions.pop(sub_id, None)
        if old is not None:
            for kind in old.filters.kinds or SIGNAL_KINDS:
                self._kinds[kind].remove(old, kind)

    def match(self, signal: AnySignal) -> list[Subscription]:
        """The subscriptions whose filters accept `signal`, each once, in id order."""
        if isinstance(signal, PriceLevel):
            return []  # see `accepts`
        index = self._kinds[signal.kind]
        if isinstance(signal, AhPremium):
            found = index.candidates((signal.a, signal.h), signal.pair)
        elif isinstance(signal, IndexDivergence):
            found = index.candidates((signal.a, signal.b), signal.pair)
        else:
            found = index.candidates((signal.symbol,), None)
        chosen: dict[str, Subscription] = dict(index.all)
        checked: set[str] = set()
        for sub in found:
            if sub.id in checked or sub.id in chosen:
                continue
            checked.add(sub.id)
            if accepts(sub.filters, signal):
                chosen[sub.id] = sub
        return [chosen[k] for k in sorted(chosen)]
