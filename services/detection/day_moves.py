"""The day's moves of one symbol: previous close, price_move, limit_hit and volume_spike.

docs/signals.md ("Day moves") is the contract. `DayMoves.update` takes each accepted
tick of its symbol in arrival order (after the record-high tracker has refused late
ones) and returns the day-move signals it causes, in the contract's order: price_move,
limit_hit (an `opened` before a `sealed`, then up before down), volume_spike.

State is O(1) per tick and small: the current date's close and running volume, the
previous close, the `days` latest daily volumes, the levels and multiples reached and
the seal state of the current date, and (for a new listing still inside its no-limit
days) the dates counted so far. Each check on the hot path is one comparison against a
threshold that is recomputed only when the date, the reached levels or the seal state
change; the exact rule runs only when a threshold is passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from schemas.signals import LimitHit, LimitPhase, MoveDirection, PriceMove, VolumeSpike
from services.detection.boards import board_of, limit_prices
from services.detection.rules import Rules
from services.detection.state import check_version
from services.detection.timeline import ZoneClock

DayMoveSignal = PriceMove | LimitHit | VolumeSpike

STATE_VERSION = 1
STATE_VERSIONS = (1,)
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class DayMovesConfig:
    """The three tables of the rules, flattened for the hot path (None: that signal off)."""

    levels: tuple[float, ...] | None  # ascending
    board_pct: dict[str, float] | None  # board -> limit %, None: limit_hit off
    st: frozenset[str]
    st_pct: float
    no_limit_days: int
    listings: dict[str, int]  # symbol -> listing date (day ordinal)
    multiples: tuple[float, ...] | None  # ascending
    days: int

    def limit_pct(self, symbol: str) -> float | None:
        """The daily limit of `symbol` in %, or None if it has none (or limit_hit is off)."""
        if self.board_pct is None:
            return None
        board = board_of(symbol)
        if board is None:
            return None
        if board == "main" and symbol in self.st:
            return self.st_pct
        return self.board_pct[board]


def day_moves_config(rules: Rules) -> DayMovesConfig | None:
    """The day-move settings of `rules`, or None when none of the three tables is present."""
    if rules.price_move is None and rules.limits is None and rules.volume_spike is None:
        return None
    limits = rules.limits
    return DayMovesConfig(
        levels=None if rules.price_move is None else tuple(sorted(rules.price_move.levels_pct)),
        board_pct=None
        if limits is None
        else {
            "main": limits.main_pct,
            "star": limits.star_pct,
            "chinext": limits.chinext_pct,
            "bse": limits.bse_pct,
        },
        st=frozenset(() if limits is None else limits.st),
        st_pct=5.0 if limits is None else limits.st_pct,
        no_limit_days=0 if limits is None else limits.no_limit_days,
        listings={}
        if limits is None
        else {symbol: day.toordinal() for symbol, day in limits.listings.items()},
        multiples=None
        if rules.volume_spike is None
        else tuple(sorted(rules.volume_spike.multiples)),
        days=1 if rules.volume_spike is None else rules.volume_spike.days,
    )


def _next_above(values: tuple[float, ...] | None, reached: float) -> float:
    """The smallest of `values` above `reached`; infinity if none (nothing left to fire)."""
    if values is not None:
        for value in values:
            if value > reached:
                return value
    return _INF


class DayMoves:
    """Everything the day moves keep per symbol. `update` and `add_bar` are the mutators."""

    __slots__ = (
        "_down_limit",
        "_down_next",
        "_hi",
        "_listed_from",
        "_lo",
        "_mean",
        "_moves",
        "_pct",
        "_quiet_hi",
        "_quiet_lo",
        "_up_limit",
        "_up_next",
        "_vol_next",
        "clock",
        "close",
        "close_us",
        "config",
        "day",
        "down_level",
        "down_sealed",
        "down_seals",
        "first_day",
        "listed",
        "multiple",
        "pending",
        "prev_close",
        "prev_day",
        "symbol",
        "up_level",
        "up_sealed",
        "up_seals",
        "volume",
        "volumes",
    )

    def __init__(self, symbol: str, config: DayMovesConfig, clock: ZoneClock) -> None:
        self.symbol = symbol
        self.config = config
        self.clock = clock
        self._pct = config.limit_pct(symbol)
        listed_from = config.listings.get(symbol) if self._pct is not None else None
        self._listed_from = listed_from
        # The dates counted towards a new listing's no-limit days (from its listing date),
        # while there are at most `no_limit_days`; None once the limit applies (or always
        # applied: not a listing).
        self.listed: set[int] | None = None if listed_from is None else set()
        self._moves = config.levels is not None
        # Daily bars held until the first tick fixes which ones count: day -> (close, volume).
        self.pending: dict[int, tuple[float, int | None]] | None = None
        self.first_day: int | None = None
        # The current date (of the latest-dated accepted tick), its close so far (the
        # price of its greatest ts, ties to the later arrival) and its volume so far.
        self.day: int | None = None
        self.close_us = 0
        self.close = 0.0
        self.volume = 0
        self.prev_close: float | None = None
        self.prev_day = 0
        # [day, volume] of the `days` latest dates before the current one with a daily
        # volume, oldest first.
        self.volumes: list[list[int]] = []
        # What the current date has reached: the largest level up and down (0: none), the
        # largest volume multiple (0: none), and each limit's seal state and seal count.
        self.up_level = 0.0
        self.down_level = 0.0
        self.multiple = 0.0
        self.up_sealed = False
        self.down_sealed = False
        self.up_seals = 0
        self.down_seals = 0
        # The local day span of the current date, as far as its offset is constant (most
        # ticks fall in it): a tick inside it is of the current date.
        self._lo, self._hi = 0, 0
        self._arm()

    # -- the step ---------------------------------------------------------------------

    def update(self, us: int, price: float, volume: int, kind: str) -> list[DayMoveSignal] | None:
        """One accepted tick (epoch us, price, volume, kind) in arrival order: its signals."""
        if not self._lo <= us < self._hi:
            # Outside the current date's span: another date, or the first tick.
            day, lo, hi = self.clock.day_span(us)
            current = self.day
            if day != current:
                if current is not None and day < current:
                    self._late(day)
                    return None
                self._new_date(day)
            self._lo, self._hi = lo, hi
        if us >= self.close_us:
            self.close_us = us
            self.close = price
        total = self.volume = self.volume + volume
        if self._quiet_lo < price < self._quiet_hi and total < self._vol_next:
            return None  # most ticks: no level, limit or multiple within reach
        c = self.prev_close
        if c is None:
            return None
        out: list[DayMoveSignal] | None = None
        if self._moves:
            change = (price / c - 1.0) * 100.0
            if change >= self._up_next or change <= self._down_next:
                out = [self._price_move(us, price, change, c)]
        if kind == "trade" and (
            (price >= self._up_limit) is not self.up_sealed
            or (price <= self._down_limit) is not self.down_sealed
        ):
            hits = self._limit_hit(us, price, c)
            if out is None:
                out = hits
            else:
                out.extend(hits)
        if self.volume >= self._vol_next:
            spike = self._volume_spike(us, price)
            if out is None:
                out = [spike]
            else:
                out.append(spike)
        return out

    def add_bar(self, day: int, close: float, volume: int | None) -> None:
        """A daily bar that history accepted (held before the first tick, or dated before
        its date): its close may give the first previous close, its volume a daily volume,
        its date a counted date of a new listing."""
        if self.first_day is None:
            if self.pending is None:
                self.pending = {}
            self.pending[day] = (close, volume)
            return
        if volume is not None:
            self._add_volume(day, volume)
        self._count(day)
        self._arm()

    @property
    def limit_band(self) -> tuple[float, float] | None:
        """(upper, lower) limit of the current date, or None while no limit applies."""
        if self._up_limit == _INF:
            return None
        return self._up_limit, self._down_limit

    @property
    def average_volume(self) -> float | None:
        """The current date's volume baseline (the mean), or None while none is evaluated."""
        return self._mean

    # -- dates ------------------------------------------------------------------------

    def _new_date(self, day: int) -> None:
        if self.day is None:
            self._first_date(day)
        else:
            # The close of the date that ends is the next one's previous close.
            self._add_volume(self.day, self.volume)
            self.prev_close, self.prev_day = self.close, self.day
        self.day = day
        self.close_us = -1
        self.volume = 0
        self.up_level = self.down_level = self.multiple = 0.0
        self.up_sealed = self.down_sealed = False
        self.up_seals = self.down_seals = 0
        self._count(day)
        self._arm()

    def _first_date(self, day: int) -> None:
        """The first tick: held bars dated before it give the first previous close and
        daily volumes; the others overlap ticks and are ignored."""
        self.first_day = day
        pending, self.pending = self.pending, None
        if not pending:
            return
        before = sorted(d for d in pending if d < day)
        if before:
            self.prev_day = before[-1]
            self.prev_close = pending[before[-1]][0]
        for d in before:
            volume = pending[d][1]
            if volume is not None:
                self._add_volume(d, volume)
            self._count(d)

    def _late(self, day: int) -> None:
        """An accepted tick dated before the current date: it only counts as a trading
        date of a new listing."""
        if self.listed is not None and self._count(day):
            self._arm()

    def _count(self, day: int) -> bool:
        """Count `day` towards a new listing's no-limit days; True if the limit now applies."""
        listed = self.listed
        if listed is None or self._listed_from is None or day < self._listed_from:
            return False
        listed.add(day)
        if len(listed) > self.config.no_limit_days:
            self.listed = None
            return True
        return False

    def _add_volume(self, day: int, volume: int) -> None:
        if self.config.multiples is None:
            return
        volumes = self.volumes
        volumes.append([day, volume])
        if len(volumes) > 1 and volumes[-2][0] > day:
            volumes.sort()  # a bar that came after the ticks began: an older date
        if len(volumes) > self.config.days:
            del volumes[: len(volumes) - self.config.days]

    def _arm(self) -> None:
        """Recompute the thresholds the hot path compares against."""
        c = self.prev_close
        config = self.config
        self._up_next = _next_above(config.levels, self.up_level)
        self._down_next = -_next_above(config.levels, self.down_level)
        if c is not None and self._pct is not None and self.listed is None:
            self._up_limit, self._down_limit = limit_prices(c, self._pct)
        else:
            self._up_limit, self._down_limit = _INF, -_INF
        self._mean = None
        self._vol_next = _INF
        if config.multiples is not None and len(self.volumes) == config.days:
            mean = sum(v for _, v in self.volumes) / config.days
            if mean > 0:
                self._mean = mean
                self._vol_next = _next_above(config.multiples, self.multiple) * mean
        self._quiet()

    def _quiet(self) -> None:
        """The prices between which a tick can neither reach a level nor touch a limit:
        `update` judges nothing else for them. The level's edge is drawn a relative 1e-9
        inside its exact price, far beyond the rounding of `change`, so a tick in the
        band is one whose exact `change` is beyond no level; anything else takes the
        exact comparisons. Recomputed whenever a threshold or a seal moves."""
        c = self.prev_close
        if c is None:
            self._quiet_lo, self._quiet_hi = -_INF, _INF  # nothing is judged yet
            return
        if self.up_sealed or self.down_sealed:
            self._quiet_lo, self._quiet_hi = _INF, -_INF  # every tick may open the seal
            return
        lo, hi = self._down_limit, self._up_limit
        if self._moves:
            if self._up_next != _INF:
                hi = min(hi, c * (1.0 + self._up_next / 100.0) * (1.0 - 1e-9))
            if self._down_next != -_INF:
                lo = max(lo, c * (1.0 + self._down_next / 100.0) * (1.0 + 1e-9))
        self._quiet_lo, self._quiet_hi = lo, hi

    # -- the signals (past a threshold) -----------------------------------------------

    def _price_move(self, us: int, price: float, change: float, c: float) -> PriceMove:
        levels = self.config.levels
        assert levels is not None
        if change >= self._up_next:
            level = max(x for x in levels if change >= x)
            self.up_level = level
            direction: MoveDirection = "up"
            self._up_next = _next_above(levels, level)
        else:
            level = max(x for x in levels if change <= -x)
            self.down_level = level
            direction = "down"
            self._down_next = -_next_above(levels, level)
        self._quiet()
        return PriceMove(
            symbol=self.symbol,
            ts=self.clock.datetime(us),
            price=price,
            direction=direction,
            level_pct=level,
            change_pct=change,
            previous_close=c,
            previous_close_date=date.fromordinal(self.prev_day).isoformat(),
        )

    def _limit_hit(self, us: int, price: float, c: float) -> list[DayMoveSignal]:
        at_up = price >= self._up_limit
        at_down = price <= self._down_limit
        opened: list[DayMoveSignal] = []
        sealed: list[DayMoveSignal] = []
        if self.up_sealed and not at_up:
            self.up_sealed = False
            opened.append(self._hit(us, price, c, "up", "opened", self.up_seals))
        if self.down_sealed and not at_down:
            self.down_sealed = False
            opened.append(self._hit(us, price, c, "down", "opened", self.down_seals))
        if at_up and not self.up_sealed:
            self.up_sealed = True
            self.up_seals += 1
            sealed.append(self._hit(us, price, c, "up", "sealed", self.up_seals))
        if at_down and not self.down_sealed:
            self.down_sealed = True
            self.down_seals += 1
            sealed.append(self._hit(us, price, c, "down", "sealed", self.down_seals))
        self._quiet()
        return opened + sealed

    def _hit(
        self,
        us: int,
        price: float,
        c: float,
        direction: MoveDirection,
        phase: LimitPhase,
        seals: int,
    ) -> LimitHit:
        assert self._pct is not None  # a limit is armed only for a symbol that has one
        return LimitHit(
            symbol=self.symbol,
            ts=self.clock.datetime(us),
            price=price,
            direction=direction,
            phase=phase,
            limit_price=self._up_limit if direction == "up" else self._down_limit,
            limit_pct=self._pct,
            previous_close=c,
            seals=seals,
        )

    def _volume_spike(self, us: int, price: float) -> VolumeSpike:
        multiples, mean = self.config.multiples, self._mean
        assert multiples is not None
        assert mean is not None
        volume = self.volume
        multiple = max(m for m in multiples if volume >= m * mean)
        self.multiple = multiple
        self._vol_next = _next_above(multiples, multiple) * mean
        return VolumeSpike(
            symbol=self.symbol,
            ts=self.clock.datetime(us),
            price=price,
            volume=volume,
            average_volume=mean,
            multiple=multiple,
            days=self.config.days,
        )

    # -- serialisation ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-friendly state; thresholds are derived again on restore."""
        return {
            "v": STATE_VERSION,
            "first_day": self.first_day,
            "pending": None
            if self.pending is None
            else [[d, c, v] for d, (c, v) in sorted(self.pending.items())],
            "day": self.day,
            "close_us": self.close_us,
            "close": self.close,
            "volume": self.volume,
            "prev_close": self.prev_close,
            "prev_day": self.prev_day,
            "volumes": [list(x) for x in self.volumes],
            "levels": [self.up_level, self.down_level],
            "multiple": self.multiple,
            "seals": [self.up_sealed, self.up_seals, self.down_sealed, self.down_seals],
            "listed": None if self.listed is None else sorted(self.listed),
        }

    @classmethod
    def from_state(
        cls, symbol: str, config: DayMovesConfig, clock: ZoneClock, state: dict[str, Any]
    ) -> DayMoves:
        """A tracker from `to_state` (StateVersionError for a version it cannot read)."""
        check_version(state, "day-move symbol", STATE_VERSIONS)
        moves = cls(symbol, config, clock)
        moves.first_day = state["first_day"]
        pending = state["pending"]
        moves.pending = None if pending is None else {int(d): (float(c), v) for d, c, v in pending}
        moves.day = state["day"]
        moves.close_us = int(state["close_us"])
        moves.close = float(state["close"])
        moves.volume = int(state["volume"])
        prev = state["prev_close"]
        moves.prev_close = None if prev is None else float(prev)
        moves.prev_day = int(state["prev_day"])
        moves.volumes = [[int(d), int(v)] for d, v in state["volumes"]]
        moves.up_level, moves.down_level = (float(x) for x in state["levels"])
        moves.multiple = float(state["multiple"])
        up_sealed, up_seals, down_sealed, down_seals = state["seals"]
        moves.up_sealed, moves.up_seals = bool(up_sealed), int(up_seals)
        moves.down_sealed, moves.down_seals = bool(down_sealed), int(down_seals)
        listed = state["listed"]
        if moves._listed_from is not None:
            # Under rules changed since, a count that ended (or a symbol that was not a
            # listing, whose limit applied) stays ended: the limit keeps applying.
            moves.listed = None if listed is None else {int(d) for d in listed}
        moves._arm()
        return moves
