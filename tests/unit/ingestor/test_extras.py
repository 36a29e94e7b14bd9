"""A built-in source without its optional package: one line naming the extra, exit 2,
before Kafka (services/ingestor/extras.py)."""

from __future__ import annotations

import json
import sys

import pytest

from services.cli import main
from services.ingestor.extras import load_function


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("yfinance.pricing_pb2", ["ingest", "--yahoo", "0700.HK"], "yahoo"),
        ("akshare", ["ingest", "--akshare", "--codes", "600519"], "akshare"),
        ("futu", ["ingest", "--futu", "127.0.0.1:11111", "--codes", "HK.00700"], "futu"),
        ("akshare", ["history", "fetch", "--source", "akshare", "600519.SH"], "akshare"),
        ("yfinance", ["history", "fetch", "--source", "yahoo", "0700.HK"], "yahoo"),
    ],
)
def test_without_the_extra_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    argv: list[str],
    extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""  # not even the history file's header
    option = argv[1] if argv[0] == "ingest" else " ".join(argv[:4])
    assert err.startswith(
        f"marketsignal: {option} needs the {extra} extra: pip install 'marketsignal[{extra}]'"
    )
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("nomodule", "must look like package.module:function"),
        ("no_such_module_here:f", "No module named 'no_such_module_here'"),
        ("json:nothing", "nothing is not a function of json"),
    ],
)
def test_a_function_by_name_or_why_not(spec: str, problem: str) -> None:
    assert load_function("json:dumps", "x") is json.dumps
    with pytest.raises(ValueError, match="the fetch") as caught:
        load_function(spec, "the fetch")
    assert problem in str(caught.value)
