"""The alerter's figures, from bench/bench_alerter.py run as a step of the live bench."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from bench.live.common import PY, ROOT


def alerter_figures(quick: bool) -> list[dict[str, Any]]:
    args = [PY, str(ROOT / "bench" / "bench_alerter.py")]
    args += (
        ["--alerts", "5000", "--subs", "1", "100", "10000"]
        if quick
        else ["--subs", "1", "100", "10000"]
    )
    proc = subprocess.run(
        args,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = []
    for line in proc.stdout.splitlines():
        m = re.match(
            r"\s*([0-9,]+) subscriptions: +([0-9,]+) alerts/s delivered "
            r"\(([0-9,]+) subscription deliveries, ([0-9,]+)/s",
            line,
        )
        if m:
            n = [int(g.replace(",", "")) for g in m.groups()]
            out.append(
                {
                    "subscriptions": n[0],
                    "alerts_per_s": n[1],
                    "deliveries": n[2],
                    "deliveries_per_s": n[3],
                }
            )
    return out
