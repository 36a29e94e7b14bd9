"""`marketsignal process --web-port 0`: any free port, as the metrics ports do."""

from __future__ import annotations

import socket

from services.processor.app import web_port_for


def test_a_given_port_is_kept() -> None:
    assert web_port_for(6066) == 6066


def test_zero_picks_a_free_port_faust_accepts() -> None:
    port = web_port_for(0)
    assert 1 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free: faust's web server can bind it
