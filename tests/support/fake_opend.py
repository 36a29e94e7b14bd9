"""A stand-in for Futu's OpenD on loopback, for `marketsignal ingest --futu`: it speaks
the framing futu-api speaks (futu/common/utils.py: a 44-byte header `MESSAGE_HEAD_FMT`,
"FT", the proto id, the format, the serial number, the body's length and SHA-1; no
encryption, futu-api's default) with futu-api's own protobuf classes. It answers
InitConnect, KeepAlive and Qot_Sub (noting each subscription), answers any other request
with an empty success, and pushes Qot_UpdateTicker messages when told to. `drop()` cuts
every connection, as an OpenD restart would.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
import time
from typing import Any

from futu.common.constant import MESSAGE_HEAD_FMT, ProtoId
from futu.common.pb import (
    InitConnect_pb2,
    KeepAlive_pb2,
    Qot_Sub_pb2,
    Qot_UpdateTicker_pb2,
)

from tests.support.services import free_port

_HEAD_LEN = struct.calcsize(MESSAGE_HEAD_FMT)
_PROTOBUF = 0  # ProtoFMT.Protobuf
_MARKETS = {1: "HK", 11: "US", 21: "SH", 22: "SZ"}  # Qot_Common.QotMarket
_MARKET_CODES = {name: number for number, name in _MARKETS.items()}


def frame(proto_id: int, serial_no: int, message: Any) -> bytes:
    body: bytes = message.SerializeToString()
    head = struct.pack(
        MESSAGE_HEAD_FMT,
        b"F",
        b"T",
        proto_id,
        _PROTOBUF,
        0,
        serial_no,
        len(body),
        hashlib.sha1(body).digest(),
        b"\x00" * 8,
    )
    return head + body


class FakeOpenD:
    def __init__(self) -> None:
        self.port = free_port()
        self.subscriptions: list[tuple[str, ...]] = []  # codes of each Qot_Sub, in order
        self.connections = 0
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._serial = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._clients.append(client)
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            while True:
                head = _read(client, _HEAD_LEN)
                fields = struct.unpack(MESSAGE_HEAD_FMT, head)
                proto_id, serial_no, body_len = fields[2], fields[5], fields[6]
                body = _read(client, body_len)
                self._answer(client, proto_id, serial_no, body)
        except (OSError, EOFError):
            client.close()

    def _answer(self, client: socket.socket, proto_id: int, serial_no: int, body: bytes) -> None:
        response: Any
        if proto_id == ProtoId.InitConnect:
            response = InitConnect_pb2.Response()
            response.retType = 0
            response.s2c.serverVer = 900
            response.s2c.loginUserID = 1
            response.s2c.connID = 7
            response.s2c.connAESKey = "0123456789abcdef"
            response.s2c.keepAliveInterval = 10
        elif proto_id == ProtoId.KeepAlive:
            response = KeepAlive_pb2.Response()
            response.retType = 0
            response.s2c.time = int(time.time())
        elif proto_id == ProtoId.Qot_Sub:
            request = Qot_Sub_pb2.Request()
            request.ParseFromString(body)
            codes = tuple(f"{_MARKETS[s.market]}.{s.code}" for s in request.c2s.securityList)
            with self._lock:
                self.subscriptions.append(codes)
            response = Qot_Sub_pb2.Response()
            response.retType = 0
        else:  # anything else: a bare success (retType is field 1 of every Response)
            response = KeepAlive_pb2.Response()
            response.retType = 0
        client.sendall(frame(proto_id, serial_no, response))

    def push_tickers(self, code: str, tickers: list[dict[str, Any]]) -> None:
        """One Qot_UpdateTicker push to every connection: `tickers` as dicts of time,
        sequence, price, volume."""
        market, _, number = code.partition(".")
        push = Qot_UpdateTicker_pb2.Response()
        push.retType = 0
        push.s2c.security.market = _MARKET_CODES[market]
        push.s2c.security.code = number
        push.s2c.name = code
        for fields in tickers:
            entry = push.s2c.tickerList.add()
            entry.time = fields["time"]
            entry.sequence = fields["sequence"]
            entry.dir = 3  # TickerDirection_Neutral
            entry.price = fields["price"]
            entry.volume = fields["volume"]
            entry.turnover = fields["price"] * fields["volume"]
            entry.pushDataType = fields.get("push_data_type", 1)  # 1 realtime, 2 by disconn
        with self._lock:
            self._serial += 1
            data = frame(ProtoId.Qot_UpdateTicker, self._serial, push)
            clients = list(self._clients)
        for client in clients:
            try:
                client.sendall(data)
            except OSError:
                continue

    def drop(self) -> None:
        """Cut every connection (the listening socket stays: futu-api reconnects)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):  # already gone
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def close(self) -> None:
        self._server.close()
        self.drop()


def _read(client: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = client.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
