"""`ingest FILE --follow`: read a file as it grows, as `tail -F` does, and remember where.

Complete lines only (a line still being written waits for its newline). At the end of
the file it polls: a file now shorter than what was read was truncated (read again from
the start), a different file at the path was rotated in (the old one is read to its end
first, then the new one from its start); a missing path is waited for.

The position (device, inode, byte offset, physical line number, and the CSV header) is
saved to a small JSON file once the lines before it are acknowledged by Kafka, so a
restart resumes after the last delivered line instead of sending the file again. If the
file was rotated or truncated while the ingestor was down, it starts from the beginning
of what is at the path now (what was appended to the old file meanwhile is not seen,
as with `tail -F`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from services.parsing.feed import CsvDecoder, Format, JsonlDecoder, LineReader, RawRecord


@dataclass
class Position:
    dev: int
    ino: int
    offset: int  # bytes consumed: every line before it is handed on
    line: int  # physical line number of the last line consumed
    header: str | None  # the CSV header line, None for JSON Lines or before the first line


def default_position_file(state_dir: Path, path: Path) -> Path:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return state_dir / "follow" / f"{path.name}.{digest}.json"


def load_position(path: Path) -> Position | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Position(**data)
    except (OSError, ValueError, TypeError):
        return None


def save_position(path: Path, position: Position) -> None:
    """Atomically (write, then rename): a crash leaves the old position or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(position)), encoding="utf-8")
    os.replace(tmp, path)


class FollowedFile:
    """Yields records of a followed file; `position` says how far they have been handed."""

    def __init__(
        self,
        path: Path,
        fmt: Format | None,
        stop: threading.Event,
        *,
        resume: Position | None = None,
        poll_s: float = 0.2,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.stop = stop
        self.poll_s = poll_s
        self.resume = resume
        self.position: Position | None = None
        self.reopened = 0  # rotations and truncations seen

    def _reader(self, header: str | None, line: int) -> LineReader:
        reader = LineReader(self.path, self.fmt)
        reader.lineno = line
        if header is not None:
            reader.decoder = CsvDecoder(header)
        elif line > 0:
            reader.decoder = JsonlDecoder()
        return reader

    def _open(self) -> IO[bytes] | None:
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            return None

    def records(self) -> Iterator[RawRecord | None]:
        """Records as lines complete; None at each idle poll (a moment to checkpoint)."""
        fh = None
        while fh is None:
            fh = self._open()
            if fh is None and self.stop.wait(self.poll_s):
                return
        assert fh is not None
        st = os.fstat(fh.fileno())
        start, line, header = 0, 0, None
        resume = self.resume
        if (
            resume is not None
            and (resume.dev, resume.ino) == (st.st_dev, st.st_ino)
            and st.st_size >= resume.offset
        ):
            start, line, header = resume.offset, resume.line, resume.header
            fh.seek(start)
        reader = self._reader(header, line)
        self.position = Position(st.st_dev, st.st_ino, start, line, header)
        try:
            while not self.stop.is_set():
                at = fh.tell()
                raw = fh.readline()
                if raw.endswith(b"\n"):
                    record = reader.feed(raw.decode("utf-8", errors="replace"))
                    decoder = reader.decoder
                    header_line = decoder.header_line if isinstance(decoder, CsvDecoder) else None
                    self.position = Position(
                        st.st_dev, st.st_ino, fh.tell(), reader.lineno, header_line
                    )
                    if record is not None:
                        yield record
                    continue
                fh.seek(at)  # nothing, or a line still being written: wait for more
                replaced = self._replaced(fh, at)
                if replaced is None:
                    yield None
                    if self.stop.wait(self.poll_s):
                        return
                    continue
                fh.close()
                fh = replaced
                st = os.fstat(fh.fileno())
                self.reopened += 1
                reader = self._reader(None, 0)
                self.position = Position(st.st_dev, st.st_ino, 0, 0, None)
        finally:
            fh.close()

    def _replaced(self, fh: IO[bytes], at: int) -> IO[bytes] | None:
        """A new file to read from the start (truncated or rotated), else None."""
        current = os.fstat(fh.fileno())
        try:
            now = self.path.stat()
        except FileNotFoundError:
            return None  # rotated away, the new one not there yet: keep waiting
        if (now.st_dev, now.st_ino) != (current.st_dev, current.st_ino):
            if current.st_size > at:
                return None  # the old file still has lines to read first
            return self._open()
        if now.st_size < at:
            return self._open()  # truncated in place: the same inode, from the start
        return None
