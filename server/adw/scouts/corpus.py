"""The full-text index: every readable text file of the tree, normalised into one byte string.

Why not an inverted index first? Building one in Python costs about 3.5 s per 40 MB of code (a Python object
per token), more than the whole first-query budget. Normalising with `bytes.translate` costs ~10 ms per
40 MB, and a term is then found by `bytes`-level substring search at memory speed (~30 ms per 40 MB). Term
results are memoised, files are re-read only when their signature changes, and the corpus can be saved to
and loaded from one file, so later processes skip the reading. After an answer, a token index
(`TokenIndex`) is built by a separate process; once it is ready, lookups use it and give exactly the scan's
hits. When a few files change, the new corpus keeps using the old token index for the unchanged files and
scans only the changed ones (`_Overlay`), so no rebuild is needed.
"""

from __future__ import annotations

import bisect
import itertools
import os
import stat
import threading
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from adw.scouts.index_builder import IndexBuilder, build_token_index, read_framed, write_framed
from adw.scouts.terms import Term

MAX_FILE_BYTES = 1_000_000  # larger files are data or generated code, not something to read first
_BINARY_PROBE = 8192
_WORD_BOUNDARY = frozenset(b" \n")

_TABLE = bytearray(b" " * 256)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789\n":
    _TABLE[_c] = _c
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _TABLE[_c] = _c + 32
# Lower-cases ASCII letters, keeps digits and newlines, turns every other byte into a space.
TABLE = bytes(_TABLE)


def read_text(root: str | os.PathLike[str], path: str) -> bytes | None:
    """The bytes of a regular, not huge, UTF-8 text file inside `root`; None for anything else."""
    # Not `Path /`: pathlib costs more than the read itself on 20,000 files.
    return _read(os.path.join(root, path), None)


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _read(path: str, dir_fd: int | None) -> bytes | None:
    try:
        fd = os.open(path, _OPEN_FLAGS, dir_fd=dir_fd)
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
    if len(data) > MAX_FILE_BYTES or data.find(b"\0", 0, _BINARY_PROBE) >= 0:
        return None
    if not data.isascii():  # most source is ASCII, and that check is ~20x cheaper than decoding
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return data


def read_texts(root: str | os.PathLike[str], paths: list[str]) -> list[bytes | None]:
    """`read_text` of many files of one tree, each normalised (`TABLE`) as soon as it is read.

    Normalising at once lets each file's raw bytes be freed before the next is read, so the memory is
    reused: fresh memory costs page faults at ~1 ms per MB on this VM, and 20,000 files are 37.5 MB.
    """
    # Opened relative to the root's descriptor, the kernel resolves one short path per file (~20% faster).
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return [None] * len(paths)  # the worktree is gone: nothing to read
    try:
        return [raw.translate(TABLE) if (raw := _read(path, root_fd)) is not None else None for path in paths]
    finally:
        os.close(root_fd)


def find_offsets(blob: bytes, needle: bytes, word_start: bool, start: int = 0, end: int | None = None) -> list[int]:
    """Every offset of `needle` in `blob[start:end]` (overlaps included); with `word_start`, only at word starts."""
    end = len(blob) if end is None else end
    offsets = []
    at = blob.find(needle, start, end)
    while at >= 0:
        if not word_start or blob[at - 1] in _WORD_BOUNDARY:
            offsets.append(at)
        at = blob.find(needle, at + 1, end)
    return offsets


_FORMAT = 3
# Below this much text a term scan costs a few milliseconds, less than starting the index builder.
INDEX_MIN_BYTES = 4_000_000
# Changed files are scanned on every lookup; beyond this share of the text a fresh token index pays off.
_OVERLAY_MAX_SHARE = 0.125


@dataclass(slots=True)
class TermHits:
    """Where one term occurs: file index -> number of occurrences, and every global offset (sorted).

    Hits answered by a token index carry no offsets (`None`): `Corpus.offsets_in` then searches the one
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
        self._vocab = b" " + vocab + b" "  # padded, so every token is found between two spaces
        self._postings = array("i")
        self._postings.frombytes(postings)
        self._bounds = array("i")
        self._bounds.frombytes(bounds)
        starts, at = [], 1
        for token in vocab.split(b" ") if vocab else ():
            starts.append(at)
            at += len(token) + 1
        self._starts = starts

    def parts(self) -> tuple[bytes, bytes, bytes]:
        """What `__init__` takes, to save the index beside its corpus."""
        return self._vocab[1:-1], self._postings.tobytes(), self._bounds.tobytes()

    def counts(self, needle: bytes, word_start: bool) -> dict[int, int]:
        """File index -> occurrences of `needle` (letters and digits), as a scan of the corpus counts them."""
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


@dataclass(slots=True)
class _IndexSlot:
    """The token index of one corpus: shared with the corpora derived from it, filled in when built."""

    index: TokenIndex | None = None
    building: bool = False


@dataclass(frozen=True, slots=True)
class _Overlay:
    """An earlier corpus's token index, reused for the files that have not changed since."""

    slot: _IndexSlot
    new_ids: list[int]  # file id in the indexed corpus -> id here, or -1 where the file changed or left
    dirty: tuple[int, ...]  # files here that the index does not cover: scanned on each lookup
    dirty_bytes: int


@dataclass(slots=True)
class Corpus:
    paths: list[str]
    signatures: list[str]
    starts: list[int]  # offset of each file in `blob`; the last entry is len(blob)
    blob: bytes = field(repr=False)
    _hits: dict[str, TermHits] = field(default_factory=dict, repr=False)  # by Term.needle
    _own: _IndexSlot = field(default_factory=_IndexSlot, repr=False)
    _overlay: _Overlay | None = field(default=None, repr=False)

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
        """A corpus for `files` (path -> signature) that re-reads only files whose signature changed.

        The unchanged files' text is joined from views of the old one: no per-file copy. A single `translate`
        of the joined text would look cheaper but costs more: on this 37.5 MB that is fresh memory, and page
        faults on it cost as much as the translation (~1 ms per MB each); small per-file results reuse memory.
        """
        if len(files) == len(self.paths) and files.keys() == set(self.paths):
            edited = self._edited(root, files)
            if edited is not None:
                return edited
        known = {path: i for i, path in enumerate(self.paths)}
        ordered = sorted(files)
        fresh = [path for path in ordered if (old := known.get(path)) is None or self.signatures[old] != files[path]]
        read = dict(zip(fresh, read_texts(root, fresh), strict=True))
        view = memoryview(self.blob)
        parts: list[bytes | memoryview] = []
        paths: list[str] = []
        signatures: list[str] = []
        starts = [0]
        new_of_old = [-1] * len(self.paths)
        dirty: list[int] = []
        for path in ordered:
            old = known.get(path)
            if path in read:
                text = read[path]
                if text is None:
                    continue
                dirty.append(len(paths))
                parts.append(b"\n")  # each text starts with a newline, so a first word starts a word
                parts.append(text)
                length = len(text) + 1
            else:
                assert old is not None
                new_of_old[old] = len(paths)
                parts.append(view[self.starts[old] : self.starts[old + 1]])
                length = self.length(old)
            paths.append(path)
            signatures.append(files[path])
            starts.append(starts[-1] + length)
        if not dirty and len(paths) == len(self.paths):
            return self
        corpus = Corpus(paths, signatures, starts, b"".join(parts))
        corpus._overlay = self._carried_overlay(new_of_old, dirty, starts)
        return corpus

    def _edited(self, root: Path, files: dict[str, str]) -> Corpus | None:
        """`updated` when the paths are the same (the usual case while editing): work in proportion to the
        edited files, not to the tree. None when an edited file can no longer be read (it leaves the corpus)."""
        paths, old_starts = self.paths, self.starts
        edited = [
            i
            for i, (path, signature) in enumerate(zip(paths, self.signatures, strict=True))
            if files[path] != signature
        ]
        if not edited:
            return self
        texts = read_texts(root, [paths[i] for i in edited])
        if any(text is None for text in texts):
            return None
        view = memoryview(self.blob)
        parts: list[bytes | memoryview] = []
        lengths = [end - start for start, end in itertools.pairwise(old_starts)]
        new_of_old = list(range(len(paths)))
        copied_to = 0
        for index, text in zip(edited, texts, strict=True):
            assert text is not None
            parts += (view[copied_to : old_starts[index]], b"\n", text)
            copied_to = old_starts[index + 1]
            lengths[index] = len(text) + 1
            new_of_old[index] = -1
        parts.append(view[copied_to:])
        starts = list(itertools.accumulate(lengths, initial=0))
        # The same `paths` list: what derives from the paths alone can be reused (see `Tree`).
        corpus = Corpus(paths, [files[path] for path in paths], starts, b"".join(parts))
        corpus._overlay = self._carried_overlay(new_of_old, edited, starts)
        return corpus

    def _carried_overlay(self, new_of_old: list[int], dirty: list[int], starts: list[int]) -> _Overlay | None:
        """What of this corpus's token index (or the one it reuses) the corpus derived from it can reuse."""
        if self._own.index is not None or self._own.building:
            slot, new_ids, carried = self._own, new_of_old, []
        elif self._overlay is not None:
            slot = self._overlay.slot
            new_ids = [new_of_old[i] if i >= 0 else -1 for i in self._overlay.new_ids]
            carried = [new_of_old[i] for i in self._overlay.dirty if new_of_old[i] >= 0]
        else:
            return None
        covered = sorted({*dirty, *carried})
        size = sum(starts[i + 1] - starts[i] for i in covered)
        return _Overlay(slot, new_ids, tuple(covered), size)

    @property
    def indexed(self) -> bool:
        """Whether lookups are answered by a token index (this corpus's own or an earlier one's)."""
        return self._token_index() is not None

    def _token_index(self) -> tuple[TokenIndex, _Overlay | None] | None:
        if self._own.index is not None:
            return self._own.index, None
        overlay = self._overlay
        if overlay is not None and overlay.slot.index is not None:
            return overlay.slot.index, overlay
        return None

    def build_index(self) -> None:
        """Build the token index here, synchronously (~3.5 s of CPU on 37.5 MB; tests and benchmarks)."""
        self._own.index = TokenIndex(*build_token_index(self.blob, self.starts))

    def index_in_background(self, on_ready: Callable[[], None] | None = None) -> threading.Thread | None:
        """Start building the token index in a low-priority helper process; lookups use it when it is ready.

        A separate process because the build is ~3.5 s of pure-Python CPU that would hold this process's GIL.
        Small corpora are not indexed: their scans already cost a few milliseconds. Nor is a corpus that
        differs from an indexed (or indexing) one by a few files: it reuses that index (`_Overlay`).
        """
        own, overlay = self._own, self._overlay
        if own.building or own.index is not None or len(self.blob) < INDEX_MIN_BYTES:
            return None
        if (
            overlay is not None
            and (overlay.slot.index is not None or overlay.slot.building)
            and overlay.dirty_bytes <= _OVERLAY_MAX_SHARE * len(self.blob)
        ):
            return None
        own.building = True
        thread = threading.Thread(target=self._index_by_builder, args=(on_ready,), name="scout-index", daemon=True)
        thread.start()
        return thread

    def _index_by_builder(self, on_ready: Callable[[], None] | None) -> None:
        builder = IndexBuilder.start(self.blob, self.starts)
        built = builder.result() if builder is not None else None
        if built is not None:
            self._own.index = TokenIndex(*built)
        self._own.building = False  # a failed build leaves the scans, which lose nothing but speed
        if built is not None and on_ready is not None:
            on_ready()

    def find(self, term: Term) -> TermHits:
        return self.find_all([term])[term]

    def find_all(self, terms: Iterable[Term]) -> dict[Term, TermHits]:
        """Every occurrence of each term (memoised by needle). Short terms must start a word.

        One `bytes.find` scan per term (~30 ms per 40 MB), or a token index lookup (~1 ms). A single
        regular-expression alternation for all terms looks cheaper but is 3-5x slower whenever the terms
        start with common letters.
        """
        found: dict[Term, TermHits] = {}
        indexed = self._token_index()
        for term in terms:
            hits = self._hits.get(term.needle)
            if hits is None:
                needle = term.text.encode()
                if indexed is not None and _indexable(needle):
                    counts = self._indexed_counts(*indexed, needle, term.word_start)
                    hits = TermHits(counts, None, needle, term.word_start)
                else:
                    offsets = find_offsets(self.blob, needle, term.word_start)
                    hits = TermHits(self._count_by_file(offsets), offsets)
                self._hits[term.needle] = hits
            found[term] = hits
        return found

    def _indexed_counts(
        self, index: TokenIndex, overlay: _Overlay | None, needle: bytes, word_start: bool
    ) -> dict[int, int]:
        counts = index.counts(needle, word_start)
        if overlay is None:
            return counts
        new_ids = overlay.new_ids
        moved = {new_ids[old]: n for old, n in counts.items() if new_ids[old] >= 0}
        for file in overlay.dirty:
            if n := len(find_offsets(self.blob, needle, word_start, self.starts[file], self.starts[file + 1])):
                moved[file] = n
        return dict(sorted(moved.items()))

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
            return [at - start for at in find_offsets(self.blob, hits.needle, hits.word_start, start, end)]
        lo = bisect.bisect_left(hits.offsets, start)
        hi = bisect.bisect_left(hits.offsets, end)
        return [offset - start for offset in hits.offsets[lo:hi]]

    def line_of(self, index: int, offset: int) -> int:
        """1-based line of a file-relative offset (each file's text starts with its own newline)."""
        start = self.starts[index]
        return max(1, self.blob.count(b"\n", start, start + offset))

    def save(self, file: Path) -> None:
        """Write the corpus, and its own token index when it has one, so a new process needs neither read."""
        index = self._own.index
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_suffix(f".tmp{os.getpid()}")
        with temporary.open("wb") as out:
            header = (_FORMAT, self.paths, self.signatures, self.starts)
            write_framed(out, header, self.blob, *(index.parts() if index is not None else ()))
        os.replace(temporary, file)

    @classmethod
    def load(cls, file: Path) -> Corpus | None:
        try:
            with file.open("rb") as stored:
                header, blobs = read_framed(stored)
            if not isinstance(header, tuple) or len(header) != 4 or header[0] != _FORMAT or len(blobs) not in (1, 4):
                return None
            _, paths, signatures, starts = header
            corpus = cls(paths, signatures, starts, blobs[0])
            if len(blobs) == 4:
                corpus._own.index = TokenIndex(*blobs[1:])
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return corpus

    @property
    def saveable_index(self) -> bool:
        """Whether `save` would now write a token index (this corpus's own; a reused one is not saved)."""
        return self._own.index is not None


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
