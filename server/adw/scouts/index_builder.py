"""Builds a corpus's token index (see `corpus.TokenIndex`) in a separate, low-priority process.

The build is ~3.5 s of pure-Python CPU per 40 MB of text, which in-process would hold the GIL that the
language server's requests need. This file uses the standard library only and runs as a script
(`python -I -S index_builder.py`), so the builder starts in ~20 ms without importing adw (~0.4 s). The
corpus and the index travel through unnamed temporary files, so neither side ever blocks on a full pipe.
"""

from __future__ import annotations

import atexit
import marshal
import os
import struct
import subprocess
import sys
import tempfile
from array import array
from collections import Counter
from typing import IO, Any


def build_token_index(blob: bytes, starts: list[int]) -> tuple[bytes, bytes, bytes]:
    """(space-joined sorted tokens, flat (file, count) postings, posting bounds per token), as bytes."""
    postings: dict[bytes, list[int]] = {}
    for index in range(len(starts) - 1):
        for token, n in Counter(blob[starts[index] : starts[index + 1]].split()).items():
            found = postings.get(token)
            if found is None:
                found = postings[token] = []
            found.append(index)
            found.append(n)
    tokens = sorted(postings)
    flat, bounds = array("i"), array("i", [0])
    for token in tokens:
        flat.extend(postings[token])
        bounds.append(len(flat))
    return b" ".join(tokens), flat.tobytes(), bounds.tobytes()


_LENGTH = struct.Struct("<Q")
_MAGIC = b"adw-framed-1\n"  # anything else (a file of an older format, a foreign one) is refused at once


def write_framed(file: IO[bytes], header: Any, *blobs: bytes) -> None:
    """`header` (marshal), then each blob as is: writing 40 MB of text then holds the GIL for no copy at all."""
    data = marshal.dumps((header, len(blobs)))
    file.write(_MAGIC)
    file.write(_LENGTH.pack(len(data)))
    file.write(data)
    for blob in blobs:
        file.write(_LENGTH.pack(len(blob)))
        file.write(blob)


def read_framed(file: IO[bytes]) -> tuple[Any, list[bytes]]:
    """What `write_framed` wrote. Raises ValueError (or EOFError, TypeError) on anything else."""
    if file.read(len(_MAGIC)) != _MAGIC:
        raise ValueError("not a file of framed blobs")
    header, count = marshal.loads(_read_frame(file))
    return header, [_read_frame(file) for _ in range(count)]


def _read_frame(file: IO[bytes]) -> bytes:
    size = _LENGTH.unpack(_read_exactly(file, _LENGTH.size))[0]
    if size > _left(file):
        raise EOFError(f"a frame of {size} bytes, longer than what is left")  # checked before allocating it
    return _read_exactly(file, size)


def _left(file: IO[bytes]) -> int:
    try:
        return os.fstat(file.fileno()).st_size - file.tell()
    except (OSError, ValueError):  # not a seekable file: trust the length
        return 1 << 62


def _read_exactly(file: IO[bytes], size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise EOFError(f"expected {size} bytes, found {len(data)}")
    return data


_RUNNING: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _stop_builders() -> None:
    for process in list(_RUNNING):
        process.kill()


class IndexBuilder:
    """One build, run by this file in a separate process."""

    def __init__(self, process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
        self._process = process
        self._output = output

    @classmethod
    def start(cls, blob: bytes, starts: list[int]) -> IndexBuilder | None:
        """Start building the index of a corpus; None where no process can be started."""
        with tempfile.TemporaryFile() as request:
            write_framed(request, starts, blob)
            request.seek(0)
            output = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this call; `result` closes it
            try:
                process = subprocess.Popen(  # noqa: S603 - our own interpreter running this very file
                    [sys.executable, "-I", "-S", os.path.abspath(__file__)],
                    stdin=request, stdout=output, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            except OSError:
                output.close()
                return None
        _RUNNING.add(process)
        return cls(process, output)

    def result(self) -> tuple[bytes, bytes, bytes] | None:
        """`build_token_index`'s answer, or None if the builder failed (killed, crashed, unreadable output)."""
        try:
            if self._process.wait() != 0:
                return None
            self._output.seek(0)
            built = marshal.load(self._output)
            return built if isinstance(built, tuple) and len(built) == 3 else None
        except (OSError, EOFError, ValueError, TypeError):
            return None
        finally:
            _RUNNING.discard(self._process)
            self._output.close()


def _serve() -> None:
    os.nice(10)  # behind whatever serves the user
    starts, [blob] = read_framed(sys.stdin.buffer)
    marshal.dump(build_token_index(blob, starts), sys.stdout.buffer)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
