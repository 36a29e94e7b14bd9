"""Rules files: what loads, and the clear errors for what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.detection.rules import Rules, RulesError

SPEC_EXAMPLE = """
[ticks]
allowed_lateness_s = 5

[timezones]
".HK" = "Asia/Hong_Kong"
".SH" = "Asia/Shanghai"
".SZ" = "Asia/Shanghai"

[record_high]
windows = ["all_time", "52w"]
step_pct = 1.0

[[divergence]]
a = "000688.SH"
b = "HSTECH.HK"
window = "ytd"
threshold_pp = 10.0
hysteresis = 0.8
require_opposite_signs = false
max_wait_s = 2.0
"""


def test_the_contract_example_equals_the_defaults() -> None:
    assert Rules.from_toml_text(SPEC_EXAMPLE) == Rules()


def test_defaults() -> None:
    rules = Rules()
    assert rules.ticks.allowed_lateness_s == 5
    assert rules.record_high.windows == ("all_time", "52w")
    (pair,) = rules.divergence
    assert (pair.name, pair.window, pair.threshold_pp, pair.hysteresis) == (
        "000688.SH/HSTECH.HK",
        "ytd",
        10.0,
        0.8,
    )
    assert rules.exchange_zones().zone_for("X.SZ").key == "Asia/Shanghai"  # type: ignore[attr-defined]


def test_any_pair_and_nd_windows() -> None:
    rules = Rules.from_toml_text(
        '[[divergence]]\na = "HSI.HK"\nb = "000300.SH"\nwindow = "20d"\n'
        '[[divergence]]\na = "A"\nb = "B"\nrequire_opposite_signs = true\n'
    )
    assert [p.name for p in rules.divergence] == ["HSI.HK/000300.SH", "A/B"]
    assert rules.divergence[0].window_days == 20
    assert rules.divergence[1].window_days is None


def test_an_empty_divergence_list_disables_pairs() -> None:
    assert Rules.from_toml_text("divergence = []").divergence == ()


def test_extra_timezone_keeps_the_defaults() -> None:
    rules = Rules.from_toml_text('[timezones]\n".T" = "Asia/Tokyo"\n')
    zones = rules.exchange_zones()
    assert zones.zone_for("7203.T").key == "Asia/Tokyo"  # type: ignore[attr-defined]
    assert zones.zone_for("0700.HK").key == "Asia/Hong_Kong"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ticks]\nallowed_latenes_s = 5\n", "ticks.allowed_latenes_s: unknown key"),
        ("[surprise]\nx = 1\n", "surprise: unknown key"),
        ('[record_high]\nwindows = ["all_time", "1y"]\n', "record_high.windows.1"),
        ('[[divergence]]\nwindow = "monthly"\n', "divergence.0.window"),
        ('[[divergence]]\nwindow = "0d"\n', "divergence.0.window"),
        ('[[divergence]]\na = "HSTECH.HK"\nb = "HSTECH.HK"\n', "two different indices"),
        ("[[divergence]]\nhysteresis = 1.5\n", "divergence.0.hysteresis"),
        ("[[divergence]]\nthreshold_pp = 0\n", "divergence.0.threshold_pp"),
        ('[[divergence]]\na = "bad symbol"\n', "divergence.0.a"),
        ("[[divergence]]\n[[divergence]]\n", "configured twice"),
        ('[timezones]\n".HK" = "Mars/Olympus"\n', "not an IANA time zone"),
        ('[timezones]\n"HK" = "Asia/Hong_Kong"\n', "must start with '.'"),
        ("[ticks]\nallowed_lateness_s = -1\n", "ticks.allowed_lateness_s"),
        ("[ticks\n", "not valid TOML"),
    ],
)
def test_invalid_rules_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(RulesError) as err:
        Rules.from_toml_text(text, "rules.toml")
    assert str(err.value).startswith("rules.toml:")
    assert expected in str(err.value)


def test_missing_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        Rules.load(tmp_path / "nope.toml")
