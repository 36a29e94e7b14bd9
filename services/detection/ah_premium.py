"""Per-listing A/H premium: the A share's price in HKD against the H share's, with hysteresis.

A dual-listed company's A share (CNY, Shanghai or Shenzhen) and H share (HKD, Hong Kong)
and the exchange rate arrive as separate feeds; the shared reorder buffer
(`ordering.EventOrder`, legs a=0, h=1, fx=2) releases their ticks in (ts, a, h, fx,
arrival) order exactly as a divergence pair's, and each released tick is evaluated
against the as-of last price of every leg. A fixed `fx_rate` is a leg that is always
there and never ticks.
"""

from __future__ import annotations

from typing import Any

from schemas.signals import AhPremium
from services.detection.ordering import EventOrder, Held
from services.detection.rules import AhRule
from services.detection.state import check_version
from services.detection.timeline import ZoneClock

STATE_VERSION = 1
STATE_VERSIONS = (1,)

A, H, FX = 0, 1, 2


class AhTracker:
    """State of one configured listing. Feed it the accepted ticks of its legs."""

    def __init__(self, rule: AhRule, clocks: tuple[ZoneClock, ...]) -> None:
        if len(clocks) != len(rule.legs):
            raise ValueError(f"{rule.name}: one clock per leg ({len(rule.legs)}) is needed")
        self.rule = rule
        self.name = rule.name
        self.clocks = clocks
        self._legs = {symbol: i for i, symbol in enumerate(rule.legs)}
        self._close_below = rule.threshold_pct * rule.hysteresis
        self.order = EventOrder(len(rule.legs), rule.max_wait_s)
        # as-of last price per leg, in evaluation order (a fixed rate is always there)
        self.last: list[float | None] = [None, None, rule.fx_rate]
        self.open_direction: str | None = None
        # When a list (charts), every evaluation appends (ts_us, premium_pct).
        self.trace: list[tuple[int, float]] | None = None

    def side_of(self, symbol: str) -> int:
        leg = self._legs.get(symbol)
        if leg is None:
            raise ValueError(f"{symbol} is not a leg of listing {self.name}")
        return leg

    @property
    def pending(self) -> int:
        return self.order.pending

    # -- the steps --------------------------------------------------------------------

    def update(
        self, symbol: str, ts_us: int, price: float, now: float | None = None
    ) -> list[AhPremium]:
        """Take one accepted tick of a leg (epoch microseconds); return what it releases."""
        out: list[AhPremium] = []
        for item in self.order.push(self.side_of(symbol), ts_us, price, now):
            self._evaluate(item, out)
        return out

    def expire(self, now: float) -> list[AhPremium]:
        """Release ticks that waited `max_wait_s` (and every tick ordered before them)."""
        out: list[AhPremium] = []
        for item in self.order.expire(now):
            self._evaluate(item, out)
        return out

    def flush(self) -> list[AhPremium]:
        """Evaluate everything still held (end of a finite input)."""
        out: list[AhPremium] = []
        for item in self.order.flush():
            self._evaluate(item, out)
        return out

    def _evaluate(self, item: Held, out: list[AhPremium]) -> None:
        leg, price = item[1], item[3]
        last = self.last
        last[leg] = price
        price_a, price_h, fx = last
        if price_a is None or price_h is None or fx is None:
            return
        premium = 100.0 * (price_a * fx / price_h - 1.0)
        if self.trace is not None:
            self.trace.append((item[0], premium))
        magnitude = abs(premium)
        beyond = magnitude >= self.rule.threshold_pct
        direction = "a_premium" if premium > 0 else "h_premium"
        current = self.open_direction
        if current is None:
            if beyond:
                self.open_direction = direction
                out.append(self._signal(item, "open", direction, price_a, price_h, fx, premium))
        elif magnitude < self._close_below:
            self.open_direction = None
            out.append(self._signal(item, "close", current, price_a, price_h, fx, premium))
        elif beyond and direction != current:
            out.append(self._signal(item, "close", current, price_a, price_h, fx, premium))
            self.open_direction = direction
            out.append(self._signal(item, "open", direction, price_a, price_h, fx, premium))

    def _signal(
        self,
        item: Held,
        phase: str,
        direction: str,
        price_a: float,
        price_h: float,
        fx: float,
        premium: float,
    ) -> AhPremium:
        rule = self.rule
        return AhPremium(
            pair=self.name,
            a=rule.a,
            h=rule.h,
            ts=self.clocks[item[1]].datetime(item[0]),
            phase=phase,
            direction=direction,
            price_a=price_a,
            price_h=price_h,
            fx=fx,
            premium_pct=premium,
            threshold_pct=rule.threshold_pct,
        )

    # -- serialisation ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            **self.order.to_state(),
            "last": self.last[: len(self.rule.legs)],
            "open": self.open_direction,
        }

    @classmethod
    def from_state(
        cls, rule: AhRule, clocks: tuple[ZoneClock, ...], state: dict[str, Any]
    ) -> AhTracker:
        check_version(state, "A/H listing", STATE_VERSIONS)
        t = cls(rule, clocks)
        t.order = EventOrder.from_state(len(rule.legs), rule.max_wait_s, state)
        for leg, price in enumerate(state["last"]):
            t.last[leg] = None if price is None else float(price)
        t.open_direction = state["open"]
        return t
