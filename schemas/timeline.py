"""A tick's time in exact integers: microseconds since the epoch and local day ordinals.

The hot paths (the tick codec, the detectors) see a tick's time as an int of epoch
microseconds; datetimes are built only where a model or a signal needs one. That keeps
the per-tick cost low and the state JSON-plain.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
ONE_US = timedelta(microseconds=1)
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
# Every UTC offset change since 1970 falls on a quarter hour of UTC, so the offset is
# constant within an aligned 15-minute bucket; buckets that straddle one are not cached.
_BUCKET_US = 900 * US_PER_S
_MAX_CACHED_BUCKETS = 200_000


def to_us(ts: datetime) -> int:
    """Exact epoch microseconds (float timestamps can round across a second)."""
    return (ts - EPOCH) // ONE_US


def from_us(us: int, zone: tzinfo) -> datetime:
    return (EPOCH + timedelta(microseconds=us)).astimezone(zone)


class ZoneClock:
    """Local dates of epoch-microsecond instants in one zone, with a cached UTC offset."""

    __slots__ = ("_offsets", "zone")

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int] = {}

    def offset_us(self, us: int) -> int:
        bucket = us // _BUCKET_US
        off = self._offsets.get(bucket)
        if off is not None:
            return off
        off = self._exact_offset(us)
        start = bucket * _BUCKET_US
        if self._exact_offset(start) == self._exact_offset(start + _BUCKET_US - 1) == off:
            if len(self._offsets) >= _MAX_CACHED_BUCKETS:
                self._offsets.clear()
            self._offsets[bucket] = off
        return off

    def _exact_offset(self, us: int) -> int:
        offset = from_us(us, self.zone).utcoffset()
        return 0 if offset is None else offset // ONE_US

    def day(self, us: int) -> int:
        """Proleptic Gregorian ordinal of the local date of `us`."""
        return (us + self.offset_us(us)) // US_PER_DAY + EPOCH_ORDINAL

    def day_span(self, us: int) -> tuple[int, int, int]:
        """(day, first us, end us) of the local day holding `us`, if its offset is constant.

        Lets a caller answer `day` for nearby instants with two comparisons; on a day
        with an offset change the span shrinks to the instant itself.
        """
        off = self.offset_us(us)
        day = (us + off) // US_PER_DAY + EPOCH_ORDINAL
        lo = (day - EPOCH_ORDINAL) * US_PER_DAY - off
        hi = lo + US_PER_DAY
        if self.offset_us(lo) != off or self.offset_us(hi - 1) != off:
            return day, us, us + 1
        return day, lo, hi

    def datetime(self, us: int) -> datetime:
        return from_us(us, self.zone)

    def midnight_us(self, day: int) -> int:
        """The instant 00:00 local time on `day` (a daily bar's instant; fold=0 in a gap)."""
        return to_us(datetime.combine(date.fromordinal(day), time(0), tzinfo=self.zone))
