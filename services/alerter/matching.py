"""Which subscriptions want an alert: the filter predicate and an index over it. Pure.

`accepts` is the definition. `SubscriptionIndex.match` gives the same answer without a
scan of every subscription: subscriptions are indexed by kind and then by what their
symbol filter names (an exact symbol, a `*SUFFIX` such as `*.HK`, a `PREFIX*`), or by
pair for divergences and A/H premiums; only a subscription with no symbol or pair filter, or with an
unusual glob (`2?13.*`), is looked at for every alert of its kind. The candidates are
then checked with `accepts`, so the index can only ever narrow, never change, the answer
(a property test compares it with a scan on random subscriptions and alerts).
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable

from schemas.signals import SIGNAL_KINDS, AhPremium, AnySignal, RecordHigh
from schemas.subscription import Filters, Subscription

_WILD = frozenset("*?")
_PAIR_KINDS = frozenset({"index_divergence", "ah_premium"})


def symbol_matches(pattern: str, symbol: str) -> bool:
    """Case-sensitive glob: `*` any run of characters, `?` one (no `[...]` classes)."""
    if not _WILD.intersection(pattern):
        return pattern == symbol
    return fnmatch.fnmatchcase(symbol, pattern)  # the schema allows no `[` in a pattern


def accepts(filters: Filters, signal: AnySignal) -> bool:
    if filters.kinds and signal.kind not in filters.kinds:
        return False
    if isinstance(signal, RecordHigh):
        if filters.symbols and not any(symbol_matches(p, signal.symbol) for p in filters.symbols):
            return False
        if filters.windows and signal.window not in filters.windows:
            return False
        return filters.min_change_pct is None or signal.change_pct >= filters.min_change_pct
    if isinstance(signal, AhPremium):
        if filters.symbols and not any(
            symbol_matches(p, signal.a) or symbol_matches(p, signal.h) for p in filters.symbols
        ):
            return False
        if filters.pairs and signal.pair not in filters.pairs:
            return False
        if filters.phases and signal.phase not in filters.phases:
            return False
        return filters.min_premium_pct is None or (
            abs(signal.premium_pct) >= filters.min_premium_pct
        )
    if filters.symbols and not any(
        symbol_matches(p, signal.a) or symbol_matches(p, signal.b) for p in filters.symbols
    ):
        return False
    if filters.pairs and signal.pair not in filters.pairs:
        return False
    if filters.phases and signal.phase not in filters.phases:
        return False
    if filters.directions and signal.direction not in filters.directions:
        return False
    if filters.divergence_windows and signal.window not in filters.divergence_windows:
        return False
    return filters.min_spread_pp is None or abs(signal.spread_pp) >= filters.min_spread_pp


class _KindIndex:
    __slots__ = ("by_pair", "by_prefix", "by_suffix", "by_symbol", "scan")

    def __init__(self) -> None:
        self.by_symbol: dict[str, list[Subscription]] = defaultdict(list)
        self.by_suffix: dict[str, list[Subscription]] = defaultdict(list)
        self.by_prefix: dict[str, list[Subscription]] = defaultdict(list)
        self.by_pair: dict[str, list[Subscription]] = defaultdict(list)
        self.scan: list[Subscription] = []

    def add(self, sub: Subscription, kind: str) -> None:
        f = sub.filters
        if f.symbols:
            for pattern in f.symbols:
                wild = [i for i, c in enumerate(pattern) if c in _WILD]
                if not wild:
                    self.by_symbol[pattern].append(sub)
                elif wild == [0] and pattern[0] == "*":
                    self.by_suffix[pattern[1:]].append(sub)
                elif wild == [len(pattern) - 1] and pattern[-1] == "*":
                    self.by_prefix[pattern[:-1]].append(sub)
                else:
                    self.scan.append(sub)
        elif kind in _PAIR_KINDS and f.pairs:
            for pair in f.pairs:
                self.by_pair[pair].append(sub)
        else:
            self.scan.append(sub)

    def candidates(self, symbols: Iterable[str], pair: str | None) -> Iterable[Subscription]:
        yield from self.scan
        if pair is not None:
            yield from self.by_pair.get(pair, ())
        for symbol in symbols:
            yield from self.by_symbol.get(symbol, ())
            if self.by_suffix:
                for i in range(len(symbol) + 1):
                    yield from self.by_suffix.get(symbol[i:], ())
            if self.by_prefix:
                for i in range(len(symbol) + 1):
                    yield from self.by_prefix.get(symbol[:i], ())


class SubscriptionIndex:
    """Immutable once built; the registry builds a new one when subscriptions change."""

    def __init__(self, subscriptions: Iterable[Subscription] = ()) -> None:
        self.subscriptions: dict[str, Subscription] = {s.id: s for s in subscriptions}
        self._kinds: dict[str, _KindIndex] = {k: _KindIndex() for k in SIGNAL_KINDS}
        for sub in self.subscriptions.values():
            for kind in sub.filters.kinds or SIGNAL_KINDS:
                self._kinds[kind].add(sub, kind)

    def __len__(self) -> int:
        return len(self.subscriptions)

    def match(self, signal: AnySignal) -> list[Subscription]:
        """The subscriptions whose filters accept `signal`, each once, in id order."""
        index = self._kinds[signal.kind]
        if isinstance(signal, RecordHigh):
            found = index.candidates((signal.symbol,), None)
        elif isinstance(signal, AhPremium):
            found = index.candidates((signal.a, signal.h), signal.pair)
        else:
            found = index.candidates((signal.a, signal.b), signal.pair)
        checked: set[str] = set()
        chosen: list[Subscription] = []
        for sub in found:
            if sub.id in checked:
                continue
            checked.add(sub.id)
            if accepts(sub.filters, signal):
                chosen.append(sub)
        chosen.sort(key=lambda s: s.id)
        return chosen
