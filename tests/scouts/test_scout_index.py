"""The token index answers term lookups exactly as the substring scan of the normalised corpus does."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from adw.scouts import corpus as corpus_module
from adw.scouts.context import FactsCache, Tree
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


def _assert_same_hits(corpus: Corpus, terms: list[Term]) -> None:
    for term in terms:
        expected, got = _scanned(corpus, term), corpus.find(term)
        assert list(got.counts.items()) == list(expected.counts.items()), term
        for index in got.counts:
            assert corpus.offsets_in(got, index) == corpus.offsets_in(expected, index), (term, index)


def test_changed_files_reuse_the_old_index_and_give_exactly_the_scans_hits(tmp_path: Path) -> None:
    files = _tree(tmp_path)
    indexed = Corpus.empty().updated(tmp_path, files)
    indexed.build_index()
    # Edit two files, delete one, add one before and one after every other path.
    (tmp_path / "pkg/m3.py").write_text("session_cookie aa abab\n", "utf-8")
    (tmp_path / "pkg/m10.py").write_text("Port import report\nhttp2", "utf-8")
    (tmp_path / "pkg/m5.py").unlink()
    (tmp_path / "a_first.py").write_text("aaa cookie\n", "utf-8")
    (tmp_path / "zz/last.py").parent.mkdir()
    (tmp_path / "zz/last.py").write_text("sessioncookie x1\n", "utf-8")
    changed = {**files, "pkg/m3.py": "edited", "pkg/m10.py": "edited", "a_first.py": "new", "zz/last.py": "new"}
    del changed["pkg/m5.py"]
    updated = indexed.updated(tmp_path, changed)
    assert updated.indexed and updated.index_in_background() is None  # reuses the index: no rebuild
    _assert_same_hits(updated, _terms())
    # A second round of changes on top of the first still reuses the first index.
    (tmp_path / "pkg/m3.py").write_text("secure report\n", "utf-8")
    (tmp_path / "pkg/m20.py").unlink()
    again = {**changed, "pkg/m3.py": "edited twice"}
    del again["pkg/m20.py"]
    twice = updated.updated(tmp_path, again)
    assert twice.indexed
    _assert_same_hits(twice, _terms())


def test_many_changed_files_get_a_fresh_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "INDEX_MIN_BYTES", 0)
    files = _tree(tmp_path, files=20, seed=5)
    indexed = Corpus.empty().updated(tmp_path, files)
    indexed.build_index()
    for n in range(10):
        (tmp_path / f"pkg/m{n}.py").write_text(f"rewritten {n} session\n" * 100, "utf-8")
    updated = indexed.updated(tmp_path, {**files, **{f"pkg/m{n}.py": "rewritten" for n in range(10)}})
    thread = updated.index_in_background()  # most text changed: scanning it on every lookup would cost more
    assert thread is not None
    thread.join(60)
    _assert_same_hits(updated, _terms())


def test_a_change_during_the_build_waits_for_that_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "INDEX_MIN_BYTES", 0)
    files = _tree(tmp_path, files=30, seed=9)
    first = Corpus.empty().updated(tmp_path, files)
    building = first.index_in_background()
    assert building is not None
    (tmp_path / "pkg/m7.py").write_text("cookie session_cookie\n", "utf-8")
    second = first.updated(tmp_path, {**files, "pkg/m7.py": "edited"})
    assert second.index_in_background() is None  # the build under way will serve it too
    building.join(60)
    assert second.indexed
    _assert_same_hits(second, _terms())


def test_editing_files_in_place_equals_a_fresh_read(tmp_path: Path) -> None:
    files = _tree(tmp_path, files=40, seed=11)
    first = Corpus.empty().updated(tmp_path, files)
    (tmp_path / "pkg/m0.py").write_text("first file, edited\n", "utf-8")
    (tmp_path / "pkg/m25.py").write_text("", "utf-8")
    (tmp_path / "empty.txt").write_text("last file, now with text", "utf-8")
    edits = {"pkg/m0.py": "e1", "pkg/m25.py": "e2", "empty.txt": "e3"}
    edited = first.updated(tmp_path, {**files, **edits})
    fresh = Corpus.empty().updated(tmp_path, {**files, **edits})
    assert edited.paths is first.paths  # the same list: what derives from paths alone is reused
    assert (edited.signatures, edited.starts, edited.blob) == (fresh.signatures, fresh.starts, fresh.blob)
    (tmp_path / "pkg/m3.py").write_bytes(b"\xff\xfe not utf-8")  # no longer readable text: it leaves
    dropped = edited.updated(tmp_path, {**files, **edits, "pkg/m3.py": "binary"})
    assert "pkg/m3.py" not in dropped.paths
    assert dropped.blob == Corpus.empty().updated(tmp_path, {**files, **edits, "pkg/m3.py": "binary"}).blob


def test_imports_resolve_across_added_and_removed_files(tmp_path: Path) -> None:
    def write(files: dict[str, str]) -> dict[str, str]:
        for path in files:
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text("x = 1\n", "utf-8")
        return files

    def resolved(tree: Tree, module: str) -> str | None:
        index = tree.resolve(module)
        return tree.corpus.paths[index] if index is not None else None

    files = write({"src/pkg/mod.py": "1", "src/pkg/__init__.py": "2", "tests/test_mod.py": "3", "setup.py": "4"})
    facts = FactsCache()
    first = Tree(tmp_path, Corpus.empty().updated(tmp_path, files), facts)
    assert resolved(first, "pkg.mod") == resolved(first, "src.pkg.mod") == "src/pkg/mod.py"
    assert resolved(first, "pkg.mod.helper") == "src/pkg/mod.py"  # a name imported from the module
    assert resolved(first, "pkg") == "src/pkg/__init__.py" and resolved(first, "setup") == "setup.py"
    assert resolved(first, "kg.mod") is None and resolved(first, "other") is None
    # An added file that sorts first takes over the names it shares; the others keep theirs.
    added = {**files, **write({"lib/pkg/mod.py": "5"})}
    second = Tree(tmp_path, first.corpus.updated(tmp_path, added), facts, previous=first)
    assert resolved(second, "pkg.mod") == "lib/pkg/mod.py"
    assert resolved(second, "src.pkg.mod") == "src/pkg/mod.py"
    del added["lib/pkg/mod.py"]
    (tmp_path / "lib/pkg/mod.py").unlink()
    third = Tree(tmp_path, second.corpus.updated(tmp_path, added), facts, previous=second)
    assert resolved(third, "pkg.mod") == "src/pkg/mod.py"


def test_the_token_index_is_saved_with_its_corpus(tmp_path: Path) -> None:
    corpus = Corpus.empty().updated(tmp_path, _tree(tmp_path, files=25, seed=13))
    corpus.save(tmp_path / "plain.bin")
    corpus.build_index()
    corpus.save(tmp_path / "indexed.bin")
    plain, indexed = Corpus.load(tmp_path / "plain.bin"), Corpus.load(tmp_path / "indexed.bin")
    assert plain is not None and indexed is not None
    assert not plain.indexed and indexed.indexed
    assert (indexed.paths, indexed.signatures, indexed.starts, indexed.blob) == (
        corpus.paths, corpus.signatures, corpus.starts, corpus.blob
    )
    _assert_same_hits(indexed, _terms())
    (tmp_path / "broken.bin").write_bytes((tmp_path / "indexed.bin").read_bytes()[:-10])
    assert Corpus.load(tmp_path / "broken.bin") is None  # a truncated file is no corpus: read the tree again


def test_a_corpus_file_of_another_format_is_refused_not_a_crash(tmp_path: Path) -> None:
    import marshal

    older = tmp_path / "older.bin"  # what the first version of the corpus file held
    older.write_bytes(marshal.dumps((1, ["a.py"], ["sig"], [0, 3], b"\\nab")))
    assert Corpus.load(older) is None
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"adw-framed-1\\n" + b"\\xff" * 8 + b"x")  # a huge frame length in a tiny file
    assert Corpus.load(garbage) is None
