"""The full-text index: every readable text file of the tree, normalised into one byte string.

Why not an inverted index? Building one in Python costs about 1.5 s per 40 MB of code (a Python object per
token), more than the whole first-query budget. Normalising with `bytes.translate` costs ~10 ms per 40 MB,
and a term is then found by `bytes`-level substring search at memory speed (~20 ms per 40 MB). Term results
are memoised, files are re-read only when their signature changes, and the whole index can be saved to
and loaded from one file, so later processes skip the reading.
"""

from __future__ import annotations

import bisect
import marshal
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from adw.scouts.terms import Term

MAX_FILE_BYTES = 1_000_000  # larger files are data or generated code, not something to read first
_BINARY_PROBE = 8192
_FORMAT = 1
_WORD_BOUNDARY = frozenset(b" \n")

_TABLE = bytearray(b" " * 256)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789\n":
    _TABLE[_c] = _c
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _TABLE[_c] = _c + 32
TABLE = bytes(_TABLE)


def read_text(root: Path | str, path: str) -> bytes | None:
    """The bytes of a regular, not huge, UTF-8 text file inside `root`; None for anything else."""
    full = os.path.join(root, path)  # not `Path /`: pathlib costs more than the read itself on 20,000 files
    try:
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        data = os.read(fd, info.st_size + 1)
        # Only a short read is retried: a full one needs no second call to see the end of the file (one
        # syscall per file saved; a file growing while it is read is signed by its old size anyway).
        while len(data) < info.st_size and (more := os.read(fd, MAX_FILE_BYTES + 1 - len(data))):
            data += more
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:_BINARY_PROBE]:
        return None
    if not data.isascii():  # most source is ASCII, and that check is ~20x cheaper than decoding
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return data


@dataclass(slots=True)
class TermHits:
    """Where one term occurs: file index -> number of occurrences, and every global offset (sorted)."""

    counts: dict[int, int]
    offsets: list[int]


@dataclass(slots=True)
class Corpus:
    paths: list[str]
    signatures: list[str]
    starts: list[int]  # offset of each file in `blob`; the last entry is len(blob)
    blob: bytes = field(repr=False)
    _hits: dict[str, TermHits] = field(default_factory=dict, repr=False)  # by Term.needle

    @classmethod
    def empty(cls) -> Corpus:
        return cls([], [], [0], b"")

    def __len__(self) -> int:
        return len(self.paths)

    def length(self, index: int) -> int:
        return self.starts[index + 1] - self.starts[index]

    def text(self, index: int) -> bytes:
        return self.blob[self.starts[index] : self.starts[index + 1]]

    def updated(self, root: Path, files: dict[str, str]) -> Corpus:
        """A corpus for `files` (path -> signature) that re-reads only files whose signature changed."""
        known = {path: i for i, path in enumerate(self.paths)}
        texts: list[bytes] = []
        paths: list[str] = []
        signatures: list[str] = []
        reused = 0
        folder = str(root)
        for path in sorted(files):
            signature = files[path]
            old = known.get(path)
            if old is not None and self.signatures[old] == signature:
                text: bytes | None = self.text(old)
                reused += 1
            else:
                raw = read_text(folder, path)
                # The leading newline lets a term at the very start of a file match as a word start.
                text = b"\n" + raw.translate(TABLE) if raw is not None else None
            if text is None:
                continue
            paths.append(path)
            signatures.append(signature)
            texts.append(text)
        if reused == len(self.paths) == len(paths):
            return self
        starts = [0]
        for text in texts:
            starts.append(starts[-1] + len(text))
        return Corpus(paths, signatures, starts, b"".join(texts))

    def find(self, term: Term) -> TermHits:
        return self.find_all([term])[term]

    def find_all(self, terms: Iterable[Term]) -> dict[Term, TermHits]:
        """Every occurrence of each term (memoised by needle). Short terms must start a word.

        One `bytes.find` scan per term (~30 ms per 40 MB). A single regular-expression alternation for all
        terms looks cheaper but is 3-5x slower whenever the terms start with common letters.
        """
        found: dict[Term, TermHits] = {}
        blob = self.blob
        for term in terms:
            hits = self._hits.get(term.needle)
            if hits is None:
                needle = term.text.encode()
                offsets = []
                at = blob.find(needle)
                while at >= 0:
                    if not term.word_start or blob[at - 1] in _WORD_BOUNDARY:
                        offsets.append(at)
                    at = blob.find(needle, at + 1)
                hits = self._hits[term.needle] = TermHits(self._count_by_file(offsets), offsets)
            found[term] = hits
        return found

    def _count_by_file(self, offsets: list[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        starts = self.starts
        if len(offsets) < len(starts):
            for offset in offsets:
                index = bisect.bisect_right(starts, offset) - 1
                counts[index] = counts.get(index, 0) + 1
        else:
            for index in range(len(starts) - 1):
                n = bisect.bisect_left(offsets, starts[index + 1]) - bisect.bisect_left(offsets, starts[index])
                if n:
                    counts[index] = n
        return counts

    def offsets_in(self, hits: TermHits, index: int) -> list[int]:
        """Offsets of `hits` inside file `index`, relative to the file's start."""
        start, end = self.starts[index], self.starts[index + 1]
        lo = bisect.bisect_left(hits.offsets, start)
        hi = bisect.bisect_left(hits.offsets, end)
        return [offset - start for offset in hits.offsets[lo:hi]]

    def line_of(self, index: int, offset: int) -> int:
        """1-based line of a file-relative offset (each file's text starts with its own newline)."""
        start = self.starts[index]
        return max(1, self.blob.count(b"\n", start, start + offset))

    def save(self, file: Path) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_suffix(f".tmp{os.getpid()}")
        temporary.write_bytes(marshal.dumps((_FORMAT, self.paths, self.signatures, self.starts, self.blob)))
        os.replace(temporary, file)

    @classmethod
    def load(cls, file: Path) -> Corpus | None:
        try:
            data = marshal.loads(file.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if not isinstance(data, tuple) or len(data) != 5 or data[0] != _FORMAT:
            return None
        _, paths, signatures, starts, blob = data
        return cls(paths, signatures, starts, blob)


def lines_with(corpus: Corpus, index: int, hits: Iterable[TermHits]) -> dict[int, int]:
    """Line -> number of distinct terms on it, for one file."""
    per_line: dict[int, set[int]] = {}
    for term_number, term_hits in enumerate(hits):
        for offset in corpus.offsets_in(term_hits, index):
            per_line.setdefault(corpus.line_of(index, offset), set()).add(term_number)
    return {line: len(found) for line, found in per_line.items()}
