"""The token index answers term lookups exactly as the substring scan of the normalised corpus does."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from adw.scouts import corpus as corpus_module
from adw.scouts.corpus import Corpus, TermHits, lines_with
from adw.scouts.terms import Term

_WORDS = ["session", "cookie", "secure", "port", "import", "report", "aaa", "aa", "ab", "abab", "x1", "http2"]


def _tree(root: Path, files: int = 60, seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed)
    paths: dict[str, str] = {}
    for n in range(files):
        words = []
        for _ in range(rng.randint(0, 80)):
            parts = rng.sample(_WORDS, rng.randint(1, 3))
            style = rng.choice(["snake", "camel", "plain", "dotted"])
            if style == "snake":
                words.append("_".join(parts).upper() if rng.random() < 0.3 else "_".join(parts))
            elif style == "camel":
                words.append(parts[0] + "".join(p.capitalize() for p in parts[1:]))
            elif style == "dotted":
                words.append(".".join(parts))
            else:
                words.extend(parts)
            if rng.random() < 0.2:
                words.append("\n")
        path = f"pkg/m{n}.py"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(" ".join(words) + ("" if n % 3 else "\n"), "utf-8")
        paths[path] = str(n)
    (root / "empty.txt").write_text("", "utf-8")
    paths["empty.txt"] = "e"
    return paths


def _terms() -> list[Term]:
    texts = {w[:k] for w in _WORDS for k in range(1, len(w) + 1)} | {"zzz", "sessioncookie", "a", "ba", "bab", "2"}
    terms = [Term(text, (text,)) for text in sorted(texts)]
    # Phrases and other needles with spaces or odd bytes are still scanned.
    terms += [Term("session cookie", ("session", "cookie"), phrase=True), Term("Port", ("Port",)), Term("é", ("é",))]
    return terms


def _scanned(corpus: Corpus, term: Term) -> TermHits:
    """The hits of the plain scan, on a copy of `corpus` that has neither an index nor memoised hits."""
    return Corpus(corpus.paths, corpus.signatures, corpus.starts, corpus.blob).find(term)


def test_index_gives_exactly_the_scans_hits(tmp_path: Path) -> None:
    corpus = Corpus.empty().updated(tmp_path, _tree(tmp_path))
    terms = _terms()
    scans = {term: _scanned(corpus, term) for term in terms}
    indexed = Corpus(corpus.paths, corpus.signatures, corpus.starts, corpus.blob)
    indexed.build_index()
    assert indexed.indexed
    used = 0
    for term in terms:
        expected, got = scans[term], indexed.find(term)
        used += got.offsets is None
        assert list(got.counts.items()) == list(expected.counts.items()), term
        for index in range(len(corpus)):
            assert indexed.offsets_in(got, index) == corpus.offsets_in(expected, index), (term, index)
        everywhere = range(len(corpus))
        assert [lines_with(indexed, i, [got]) for i in everywhere] == [
            lines_with(corpus, i, [expected]) for i in everywhere
        ]
    assert used > len(terms) // 2  # most terms were really answered by the index
    assert scans[Term("aa", ("aa",))].counts  # overlapping and word-start cases were exercised
    assert not indexed.find(Term("zzz", ("zzz",))).counts


def test_background_index_matches_and_small_corpora_are_not_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = Corpus.empty().updated(tmp_path, _tree(tmp_path, files=20, seed=3))
    assert corpus.index_in_background() is None  # far below INDEX_MIN_BYTES
    monkeypatch.setattr(corpus_module, "INDEX_MIN_BYTES", 0)
    thread = corpus.index_in_background()
    assert thread is not None
    assert corpus.index_in_background() is None  # one build at a time
    thread.join(60)
    assert corpus.indexed
    for term in _terms():
        assert list(corpus.find(term).counts.items()) == list(_scanned(corpus, term).counts.items())


def test_empty_corpus_index() -> None:
    corpus = Corpus.empty()
    corpus.build_index()
    assert corpus.find(Term("session", ("session",))).counts == {}
