"""The wire contract: what a Tick accepts and refuses, and what the errors say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.alert import Alert, alert_id_for
from schemas.export import export
from schemas.signals import SIGNAL_ADAPTER, RecordHigh
from schemas.tick import Tick
from schemas.zones import ExchangeZones
from services.parsing.validation import TickValidator
from tests.support import factories

HKT = timezone(timedelta(hours=8))


def tick(**fields: object) -> Tick:
    base: dict[str, object] = {"symbol": "2513.HK", "ts": "2026-02-13T10:15:00+08:00", "price": 1}
    base.update(fields)
    return Tick.model_validate(base)


def error_of(**fields: object) -> tuple[str, str]:
    result = TickValidator(ExchangeZones()).validate(
        {"symbol": "2513.HK", "ts": "2026-02-13T10:15:00+08:00", "price": "1", **fields}
    )
    assert not isinstance(result, Tick)
    assert result.field is not None
    return result.field, result.detail


class TestTimestamps:
    def test_offset_is_kept_as_the_same_instant_in_exchange_zone(self) -> None:
        t = tick(ts="2026-02-13T02:15:00Z")
        assert t.ts == datetime(2026, 2, 13, 2, 15, tzinfo=UTC)
        assert t.ts.isoformat() == "2026-02-13T10:15:00+08:00"

    def test_naive_time_is_read_in_exchange_zone(self) -> None:
        assert tick(ts="2026-02-13T10:15:00").ts == datetime(2026, 2, 13, 10, 15, tzinfo=HKT)
        sh = tick(symbol="000688.SH", ts="2026-02-13T10:15:00")
        assert sh.ts.utcoffset() == timedelta(hours=8)
        us = tick(symbol="AAPL", ts="2026-02-13T10:15:00")
        assert us.ts == datetime(2026, 2, 13, 10, 15, tzinfo=UTC)

    def test_epoch_milliseconds_int_and_digit_string(self) -> None:
        ms = int(datetime(2026, 2, 13, 2, 15, 0, 123000, tzinfo=UTC).timestamp() * 1000)
        expected = datetime(2026, 2, 13, 2, 15, 0, 123000, tzinfo=UTC)
        assert tick(ts=ms).ts == expected
        assert tick(ts=str(ms)).ts == expected
        assert tick(ts=str(ms)).ts.microsecond == 123000

    def test_configured_zone_applies_to_naive_times(self) -> None:
        zones = ExchangeZones({".T": "Asia/Tokyo"})
        t = Tick.model_validate(
            {"symbol": "7203.T", "ts": "2026-02-13T09:00:00", "price": 1},
            context={"zones": zones},
        )
        assert t.ts.utcoffset() == timedelta(hours=9)

    @pytest.mark.parametrize(
        "bad", ["yesterday", "", "2026-13-01T00:00:00", True, 1.5, -1, "99999999999999999"]
    )
    def test_bad_ts_names_the_field(self, bad: object) -> None:
        field, detail = error_of(ts=bad)
        assert field == "ts"
        assert detail.startswith("ts:")


class TestPrices:
    @pytest.mark.parametrize("bad", [0, -1, "0", "-3.5", "abc", "NaN", "nan", "inf", "Infinity"])
    def test_non_positive_non_finite_and_non_numeric_prices_are_refused(self, bad: object) -> None:
        field, _ = error_of(price=bad)
        assert field == "price"

    @pytest.mark.parametrize(
        "text", ['{"price": NaN}', '{"price": Infinity}', '{"price": -Infinity}']
    )
    def test_json_nan_and_infinity_are_refused(self, text: str) -> None:
        payload = json.loads(text)
        payload.update(symbol="2513.HK", ts="2026-02-13T10:15:00+08:00")
        with pytest.raises(ValidationError) as err:
            Tick.model_validate_json(json.dumps(payload))
        assert err.value.errors()[0]["loc"] == ("price",)

    def test_a_plain_price_parses(self) -> None:
        assert tick(price="496.00").price == 496.0


class TestSymbolsAndFields:
    @pytest.mark.parametrize("bad", ["", "A" * 33, "2513 HK", "2513.HK\n", "ä", "A/B"])
    def test_bad_symbols(self, bad: str) -> None:
        field, _ = error_of(symbol=bad)
        assert field == "symbol"

    @pytest.mark.parametrize("good", ["2513.HK", "000688.SH", "HSTECH.HK", "^GSPC", "BRK-B", "A_1"])
    def test_good_symbols(self, good: str) -> None:
        assert tick(symbol=good).symbol == good

    @pytest.mark.parametrize("missing", ["symbol", "ts", "price"])
    def test_missing_required_fields(self, missing: str) -> None:
        fields = {"symbol": "2513.HK", "ts": "2026-02-13T10:15:00+08:00", "price": "1"}
        del fields[missing]
        result = TickValidator(ExchangeZones()).validate(fields)
        assert not isinstance(result, Tick)
        assert result.field == missing
        assert "missing" in result.detail

    def test_defaults_and_blank_optionals(self) -> None:
        t = tick()
        assert (t.volume, t.kind) == (0, "trade")
        ok = TickValidator(ExchangeZones()).validate(
            {"symbol": "X", "ts": "1", "price": "1", "volume": "", "kind": " "}
        )
        assert isinstance(ok, Tick)
        assert (ok.volume, ok.kind) == (0, "trade")

    @pytest.mark.parametrize(
        ("field", "value"), [("volume", -1), ("volume", "1.5"), ("kind", "bond")]
    )
    def test_bad_optional_fields(self, field: str, value: object) -> None:
        assert error_of(**{field: value})[0] == field

    def test_ticks_are_frozen(self) -> None:
        with pytest.raises(ValidationError):
            tick().price = 2.0  # type: ignore[misc]


def _record_high() -> RecordHigh:
    return RecordHigh(
        symbol="2513.HK",
        ts=datetime(2026, 2, 13, 15, 58, tzinfo=HKT),
        price=496.0,
        window="all_time",
        previous_high=401.94,
        previous_high_ts=datetime(2026, 2, 12, 15, 0, tzinfo=HKT),
        change_pct=(496.0 / 401.94 - 1) * 100,
    )


class TestSignalsAndAlerts:
    def test_signal_union_round_trips_by_kind(self) -> None:
        rh = _record_high()
        back = SIGNAL_ADAPTER.validate_json(rh.model_dump_json())
        assert back == rh
        div = factories.divergence(datetime(2026, 2, 11, 14, 0, tzinfo=HKT), spread_pp=10.2)
        assert SIGNAL_ADAPTER.validate_json(div.model_dump_json()) == div
        assert div.subject == "000688.SH/HSTECH.HK"

    def test_unknown_kind_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            SIGNAL_ADAPTER.validate_python({"kind": "rumour", "symbol": "X"})

    def test_alert_id_is_deterministic_and_content_addressed(self) -> None:
        rh = _record_high()
        assert alert_id_for(rh) == alert_id_for(RecordHigh.model_validate(rh.model_dump()))
        other = rh.model_copy(update={"price": 497.0})
        assert alert_id_for(other) != alert_id_for(rh)
        a1 = Alert.of(rh, datetime(2026, 2, 13, tzinfo=UTC))
        a2 = Alert.of(rh, datetime(2026, 2, 14, tzinfo=UTC))
        assert a1.alert_id == a2.alert_id
        assert Alert.model_validate_json(a1.model_dump_json()) == a1

    def test_alert_with_a_forged_id_is_refused(self) -> None:
        good = Alert.of(_record_high(), datetime(2026, 2, 13, tzinfo=UTC)).model_dump()
        good["alert_id"] = "0" * 32
        with pytest.raises(ValidationError, match="alert_id"):
            Alert.model_validate(good)


def test_json_schema_export(tmp_path: Path) -> None:
    written = export(tmp_path)
    names = sorted(p.name for p in written)
    assert names == [
        "alert.schema.json",
        "dead_letter.schema.json",
        "level.schema.json",
        "signal.schema.json",
        "tick.schema.json",
        "tick_record.schema.json",
    ]
    record_schema = json.loads((tmp_path / "tick_record.schema.json").read_text())
    single, bundle = record_schema["anyOf"]
    assert single == {"$ref": "#/$defs/Tick"}
    assert (bundle["type"], bundle["minItems"]) == ("array", 1)
    assert bundle["items"] == {"$ref": "#/$defs/Tick"}
    tick_schema = json.loads((tmp_path / "tick.schema.json").read_text())
    assert set(tick_schema["required"]) == {"symbol", "ts", "price"}
    signal_schema = json.loads((tmp_path / "signal.schema.json").read_text())
    assert signal_schema["discriminator"]["propertyName"] == "kind"
    assert set(signal_schema["discriminator"]["mapping"]) == {
        "record_high",
        "index_divergence",
        "ah_premium",
        "price_move",
        "limit_hit",
        "volume_spike",
        "price_level",
    }
    level = signal_schema["$defs"]["PriceLevel"]
    assert set(level["required"]) >= {"symbol", "ts", "price", "previous_price", "level_id"}
    limit = signal_schema["$defs"]["LimitHit"]
    assert set(limit["required"]) >= {"symbol", "ts", "direction", "phase", "limit_price", "seals"}
    ah = signal_schema["$defs"]["AhPremium"]
    assert set(ah["required"]) >= {
        "pair",
        "a",
        "h",
        "ts",
        "phase",
        "direction",
        "price_a",
        "price_h",
        "fx",
        "premium_pct",
        "threshold_pct",
    }
