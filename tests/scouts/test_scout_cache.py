"""Freshness of the scouts' caches: an inotify watch (or `git status` without one) must see every change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adw.scouts import corpus, engine, scout, watch
from adw.scouts.index_builder import IndexBuilder
from tests.conftest import MakeRepo, run_git
from tests.scouts.test_scout_engine import TASK, WEBAPP

MATCHING = "def mark_session_cookie_secure(response):\n    response.secure = True  # SESSION_COOKIE_SECURE\n"
UNRELATED = "def unrelated_function_name_xy(response):\n    response.banana = True  # ORANGES_APPLES_PEARSX\n"
assert len(MATCHING) == len(UNRELATED)  # an edit that keeps the size must still be seen


@pytest.fixture(params=["inotify", "git-status"])
def webapp(request: pytest.FixtureRequest, make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(engine, "_STATES", {})
    monkeypatch.setattr(engine, "_REPOS", {})
    if request.param == "git-status":
        monkeypatch.setattr(watch, "_LIBC", None)
    elif watch._LIBC is None:
        pytest.skip("no inotify on this platform")
    return make_repo(WEBAPP, name="webapp")


def _state(root: Path) -> engine._State:
    return engine._STATES[root.resolve()]


async def test_same_size_edit_of_a_tracked_file_invalidates(webapp: Path) -> None:
    helpers = webapp / "src/webapp/helpers.py"
    helpers.write_text(MATCHING)
    run_git(webapp, "add", "-A")
    run_git(webapp, "commit", "-q", "-m", "helpers")
    first = await scout(TASK, webapp)
    assert "src/webapp/helpers.py" in first.files
    assert await scout(TASK, webapp) is first
    with helpers.open("r+") as file:  # in place: same inode, same size, no folder change
        file.write(UNRELATED)
    edited = await scout(TASK, webapp)
    assert "src/webapp/helpers.py" not in edited.files


async def test_a_file_in_a_new_nested_folder_is_seen(webapp: Path) -> None:
    first = await scout(TASK, webapp)
    nested = webapp / "src/webapp/extra/deeper/misc.py"
    nested.parent.mkdir(parents=True)
    nested.write_text(MATCHING)
    found = await scout(TASK, webapp)
    assert found is not first and "src/webapp/extra/deeper/misc.py" in found.files
    nested.write_text(UNRELATED)  # the new folder is watched too
    assert "src/webapp/extra/deeper/misc.py" not in (await scout(TASK, webapp)).files


async def test_commits_and_staging_invalidate_the_status(webapp: Path) -> None:
    (webapp / "src/webapp/helpers.py").write_text(MATCHING)
    first = await scout(TASK, webapp)
    run_git(webapp, "add", "-A")
    staged = await scout(TASK, webapp)
    assert staged is not first and staged.files == first.files
    run_git(webapp, "commit", "-q", "-m", "helpers")
    head = (await engine.read_status(webapp)).head
    committed = await scout(TASK, webapp)  # same content, new HEAD (and churn prior): recomputed
    assert committed is not staged and "src/webapp/helpers.py" in committed.files
    state = _state(webapp)
    assert state.status is None or state.status.head == head


async def test_staging_is_seen_even_though_the_file_list_is_reused(webapp: Path) -> None:
    helpers = webapp / "src/webapp/helpers.py"
    helpers.write_text(UNRELATED)
    run_git(webapp, "add", "-A")
    run_git(webapp, "commit", "-q", "-m", "unrelated helpers")
    assert "src/webapp/helpers.py" not in (await scout(TASK, webapp)).files
    listed = _state(webapp).listing
    helpers.write_text(MATCHING)
    run_git(webapp, "add", "-A")  # the worktree now equals the index: only the new blob id says it changed
    staged = await scout(TASK, webapp)
    assert "src/webapp/helpers.py" in staged.files
    assert _state(webapp).listing is not listed
    (webapp / "src/webapp/routing.py").write_text("def route(): pass\n")  # unstaged: the listing holds
    listed = _state(webapp).listing
    await scout(TASK, webapp)
    assert _state(webapp).listing is listed


async def test_our_own_output_does_not_invalidate(webapp: Path) -> None:
    first = await scout(TASK, webapp)
    await engine.save_report(first, webapp)
    assert await scout(TASK, webapp) is first


def test_watch_reports_writes_and_new_folders(tmp_path: Path) -> None:
    if watch._LIBC is None:
        pytest.skip("no inotify on this platform")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.py").write_text("x = 1\n")
    opened = watch.Watch.open(tmp_path, ())
    assert opened is not None
    try:
        assert opened.changed() == (False, False)
        (tmp_path / "a" / "f.py").write_text("x = 2\n")
        assert opened.changed() == (True, False)
        assert opened.changed() == (False, False)
        (tmp_path / "a" / "b").mkdir()
        assert opened.changed() == (True, True)
        (tmp_path / "scout_outputs").mkdir()
        (tmp_path / "scout_outputs" / "relevant_files.json").write_text("{}")
        assert opened.changed() == (False, False)
    finally:
        opened.close()


async def test_incremental_update_equals_a_fresh_index_and_a_new_process_reuses_it(
    webapp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await scout(TASK, webapp)
    (webapp / "src/webapp/helpers.py").write_text(MATCHING)
    (webapp / "src/webapp/routing.py").write_text("class Router:\n    pass\n")
    (webapp / "docs/routing.md").unlink()
    updated = await scout(TASK, webapp)
    incremental = _state(webapp).tree
    assert incremental is not None
    monkeypatch.setattr(engine, "_STATES", {})
    monkeypatch.setattr(engine, "_REPOS", {})
    engine._wait_for_save()
    for stored in (webapp / ".git" / "adw" / "scouts").glob("**/*"):
        if stored.is_file():
            stored.unlink()
    fresh = await scout(TASK, webapp)
    rebuilt = _state(webapp).tree
    assert rebuilt is not None
    assert fresh.files == updated.files and fresh.locations == updated.locations
    old, new = incremental.corpus, rebuilt.corpus
    assert (new.paths, new.signatures, new.starts, new.blob) == (old.paths, old.signatures, old.starts, old.blob)

    reads: list[str] = []
    original = corpus.read_texts
    monkeypatch.setattr(corpus, "read_texts", lambda root, paths: reads.extend(paths) or original(root, paths))
    monkeypatch.setattr(engine, "_STATES", {})
    monkeypatch.setattr(engine, "_REPOS", {})
    (webapp / "src/webapp/config.py").write_text("SESSION_COOKIE_SECURE = True\n")
    again = await scout(TASK, webapp)  # a new process: the index on disk is reused, one file re-read
    assert reads == ["src/webapp/config.py"] and "src/webapp/config.py" in again.files


async def test_a_new_worktree_starts_from_its_siblings_corpus(webapp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await scout(TASK, webapp)
    engine._wait_for_save()
    sibling = webapp.parent / "webapp-feature"
    run_git(webapp, "worktree", "add", "-q", "-b", "feature", str(sibling))
    (sibling / "src/webapp/helpers.py").write_text(MATCHING)
    reads: list[str] = []
    original = corpus.read_texts
    monkeypatch.setattr(corpus, "read_texts", lambda root, paths: reads.extend(paths) or original(root, paths))
    found = await scout(TASK, sibling)
    assert reads == ["src/webapp/helpers.py"]  # every other file is the same blob as in the main worktree
    assert "src/webapp/helpers.py" in found.files
    assert found.files[0] == (await scout(TASK, webapp)).files[0]


async def test_a_new_process_loads_the_token_index_built_by_an_earlier_one(
    webapp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(corpus, "INDEX_MIN_BYTES", 0)
    await scout(TASK, webapp)
    saved = engine._corpus_file(await engine._discover(webapp))
    deadline = time.monotonic() + 60
    while not ((stored := corpus.Corpus.load(saved)) is not None and stored.indexed):  # built, then saved again
        assert time.monotonic() < deadline, "the token index was never saved"
        await asyncio.sleep(0.05)
    monkeypatch.setattr(engine, "_STATES", {})  # a new process
    monkeypatch.setattr(engine, "_REPOS", {})
    started: list[object] = []
    monkeypatch.setattr(IndexBuilder, "start", classmethod(lambda cls, *args: started.append(args)))
    await scout("router rule", webapp)
    assert _state(webapp).tree is not None and _state(webapp).tree.corpus.indexed
    assert started == []  # loaded, not built again


async def test_a_one_shot_query_neither_watches_nor_rewrites_an_unchanged_corpus(
    webapp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await scout(TASK, webapp)
    engine._wait_for_save()
    stored = engine._corpus_file(await engine._discover(webapp))
    written = stored.stat().st_mtime_ns
    monkeypatch.setattr(engine, "_STATES", {})  # a new process, as the CLI is
    monkeypatch.setattr(engine, "_REPOS", {})
    await scout("router rule", webapp, follow_up=False)
    engine._wait_for_save()
    assert _state(webapp).watch is None
    assert stored.stat().st_mtime_ns == written  # loaded as it was: nothing to write back


async def test_only_the_most_recent_corpora_stay_on_disk(webapp: Path) -> None:
    import os

    folder = webapp / ".git/adw/scouts"
    folder.mkdir(parents=True)
    for n in range(engine._CORPORA_ON_DISK + 2):  # worktrees scouted long ago, since removed
        old = folder / f"corpus-gone{n}.bin"
        old.write_bytes(b"")
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    await scout(TASK, webapp)
    engine._wait_for_save()
    kept = sorted(path.name for path in folder.glob("corpus-*.bin"))
    own = engine._corpus_file(await engine._discover(webapp)).name
    assert len(kept) == engine._CORPORA_ON_DISK and own in kept
    assert "corpus-gone0.bin" not in kept and f"corpus-gone{engine._CORPORA_ON_DISK + 1}.bin" in kept
