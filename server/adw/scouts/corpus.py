"""The full-text index: every readable text file of the tree, normalised into one byte string.

Why not an inverted index? Building one in Python costs about 1.5 s per 40 MB of code (a Python object per
token), more than the whole first-query budget. Normalising with `bytes.translate` costs ~10 ms per 40 MB,
and a term is then found by `bytes`-level substring search at memory speed (~20 ms per 40 MB). Term results
are memoised, files are re-read only when their signature changes, and the whole index can be saved to
and loaded from one file, so later processes skip the reading. After an answer, a token index (`TokenIndex`)
is built by a background process; once it is ready, later lookups use it and give exactly the scan's hits.
"""

from __future__ import annotations

import atexit
import bisect
import marshal
import os
import stat
import subprocess
import sys
import threading
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from adw.scouts.terms import Term

MAX_FILE_BYTES = 1_000_000  # larger files are data or generated code, not something to read first
_BINARY_PROBE = 8192
_FORMAT = 1
_WORD_BOUNDARY = frozenset(b" \n")
# Below this much text a term scan costs a few milliseconds, less than starting the index builder.
INDEX_MIN_BYTES = 4_000_000

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
    """Where one term occurs: file index -> number of occurrences, and every global offset (sorted).

    Hits answered by the token index carry no offsets (`None`): `Corpus.offsets_in` then searches the one
    file it is asked about, for `needle` (bytes, starting a word if `word_start`).
    """

    counts: dict[int, int]
    offsets: list[int] | None
    needle: bytes = b""
    word_start: bool = False


class TokenIndex:
    """Every distinct token of a corpus with its postings (file index, occurrences), for exact substring hits.

    A term never spans two tokens (it is letters and digits only; tokens are separated by spaces and
    newlines), so its occurrences in the corpus are, token by token, its occurrences inside each token
    containing it times that token's count in each file. The tokens are kept in one space-joined string,
    searched like the corpus itself but ~30x smaller; overlapping occurrences are counted as the scan does.
    """

    __slots__ = ("_bounds", "_postings", "_starts", "_vocab")

    def __init__(self, vocab: bytes, postings: bytes, bounds: bytes) -> None:
        self._vocab = b" " + vocab + b" "
        self._postings = array("i")
        self._postings.frombytes(postings)
        self._bounds = array("i")
        self._bounds.frombytes(bounds)
        starts, at = [], 1
        for token in vocab.split(b" ") if vocab else ():
            starts.append(at)
            at += len(token) + 1
        self._starts = starts

    @staticmethod
    def build(blob: bytes, starts: list[int]) -> tuple[bytes, bytes, bytes]:
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

    def counts(self, needle: bytes, word_start: bool) -> dict[int, int]:
        """File index -> occurrences of `needle` (letters and digits), as `Corpus.find_all` counts them."""
        vocab, starts = self._vocab, self._starts
        pattern = b" " + needle if word_start else needle
        shift = 1 if word_start else 0
        per_token: dict[int, int] = {}
        at = vocab.find(pattern)
        while at >= 0:
            token = bisect.bisect_right(starts, at + shift) - 1
            per_token[token] = per_token.get(token, 0) + 1
            at = vocab.find(pattern, at + 1)
        counts: dict[int, int] = {}
        postings, bounds = self._postings, self._bounds
        for token, times in per_token.items():
            pairs = postings[bounds[token] : bounds[token + 1]]
            for file, n in zip(pairs[::2], pairs[1::2], strict=True):
                counts[file] = counts.get(file, 0) + times * n
        return dict(sorted(counts.items()))


_BUILDERS: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _stop_builders() -> None:
    for process in list(_BUILDERS):
        process.kill()


def _index_main() -> None:
    """The index builder process: corpus (marshal) on stdin, `TokenIndex.build` (marshal) on stdout."""
    os.nice(10)  # behind whatever serves the user
    blob, starts = marshal.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(marshal.dumps(TokenIndex.build(blob, starts)))
    sys.stdout.buffer.flush()


@dataclass(slots=True)
class Corpus:
    paths: list[str]
    signatures: list[str]
    starts: list[int]  # offset of each file in `blob`; the last entry is len(blob)
    blob: bytes = field(repr=False)
    _hits: dict[str, TermHits] = field(default_factory=dict, repr=False)  # by Term.needle
    _index: TokenIndex | None = field(default=None, repr=False)
    _indexing: bool = field(default=False, repr=False)

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

    @property
    def indexed(self) -> bool:
        return self._index is not None

    def build_index(self) -> None:
        """Build the token index here, synchronously (~3 s of CPU on 37.5 MB; tests and benchmarks)."""
        self._index = TokenIndex(*TokenIndex.build(self.blob, self.starts))

    def index_in_background(self) -> threading.Thread | None:
        """Start building the token index in a separate, low-priority process; `find_all` uses it when ready.

        A separate process because the build is ~3 s of pure-Python CPU that would hold this process's GIL;
        it is killed at exit. Small corpora are not indexed: their scans already cost a few milliseconds.
        """
        if self._indexing or self._index is not None or len(self.blob) < INDEX_MIN_BYTES:
            return None
        self._indexing = True
        thread = threading.Thread(target=self._index_from_process, name="scout-index", daemon=True)
        thread.start()
        return thread

    def _index_from_process(self) -> None:
        package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = f"import sys; sys.path.insert(0, {package!r}); from adw.scouts.corpus import _index_main; _index_main()"
        try:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and code
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError:
            return
        _BUILDERS.add(process)
        try:
            out, _ = process.communicate(marshal.dumps((self.blob, self.starts)))
            if process.returncode == 0:
                self._index = TokenIndex(*marshal.loads(out))
        except (OSError, EOFError, ValueError, TypeError):
            pass  # the scans go on; nothing is lost but speed
        finally:
            _BUILDERS.discard(process)

    def find(self, term: Term) -> TermHits:
        return self.find_all([term])[term]

    def find_all(self, terms: Iterable[Term]) -> dict[Term, TermHits]:
        """Every occurrence of each term (memoised by needle). Short terms must start a word.

        One `bytes.find` scan per term (~30 ms per 40 MB). A single regular-expression alternation for all
        terms looks cheaper but is 3-5x slower whenever the terms start with common letters.
        """
        found: dict[Term, TermHits] = {}
        blob = self.blob
        index = self._index
        for term in terms:
            hits = self._hits.get(term.needle)
            if hits is None and index is not None and _indexable(needle := term.text.encode()):
                hits = self._hits[term.needle] = TermHits(
                    index.counts(needle, term.word_start), None, needle, term.word_start
                )
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
        if hits.offsets is None:
            if index not in hits.counts:
                return []
            blob, needle, found = self.blob, hits.needle, []
            at = blob.find(needle, start, end)
            while at >= 0:
                if not hits.word_start or blob[at - 1] in _WORD_BOUNDARY:
                    found.append(at - start)
                at = blob.find(needle, at + 1, end)
            return found
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


def _indexable(needle: bytes) -> bool:
    """Only letters and digits as normalised (never a space): such a needle lies inside one token."""
    return needle.isalnum() and needle.translate(TABLE) == needle


def lines_with(corpus: Corpus, index: int, hits: Iterable[TermHits]) -> dict[int, int]:
    """Line -> number of distinct terms on it, for one file."""
    per_line: dict[int, set[int]] = {}
    for term_number, term_hits in enumerate(hits):
        for offset in corpus.offsets_in(term_hits, index):
            per_line.setdefault(corpus.line_of(index, offset), set()).add(term_number)
    return {line: len(found) for line, found in per_line.items()}
