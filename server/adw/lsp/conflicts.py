"""Conflicts between the active worktrees of each workspace folder's repository, kept fresh in the editor
(docs/WORKFLOW.md, "Conflicts between parallel worktrees").

A check runs after whatever can move a branch: a task or workflow that finishes (agents commit and
checkpoint), a command that changes worktrees or checkpoints, and a change under the repository's refs (git
or another ADW process; a stat of the ref folders every `POLL_S`). Checks are coalesced and cached by the
pair of tips (adw.git.conflicts), so only moved branches are merged again. A predicted conflict becomes a
diagnostic on the file in both worktrees, naming the other one; a conflict with the base uses the merge
preview's diagnostic. The Worktrees view and the merge preview read the latest report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from lsprotocol import types
from pydantic import BaseModel

from adw.errors import AdwError
from adw.git.conflicts import ConflictChecker, ConflictFile, ConflictReport, PairResult
from adw.git.refs import UNDO_NS
from adw.lsp.diagnostics import publish_conflicts, replace
from adw.lsp.server import AdwServer, uri_of
from adw.workflow.engine import Engine
from adw.workflow.events import TaskFinished, WorkflowFinished

log = logging.getLogger(__name__)

KEY = "worktree-conflicts"
POLL_S = 2.0
_SETTLE_S = 0.1  # a burst of triggers (a phase's checkpoint, then its finish) costs one check


class OtherWorktree(BaseModel):
    """Another active worktree a worktree would conflict with: `conflicts` in `adw/worktrees`, `activeConflicts`
    in the merge preview."""

    worktree: str
    branch: str | None
    path: Path | None
    error: str | None
    files: list[ConflictFile]


class ConflictWatch:
    def __init__(self, ls: AdwServer) -> None:
        self.ls = ls
        # Each repository's (by main folder) checker and latest report, in the folders' order
        self.reports: dict[Path, ConflictReport] = {}
        self._checkers: dict[Path, ConflictChecker] = {}
        self._wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._base_keys: set[Path] = set()  # worktrees whose conflicts with their base are published
        self._shown: list[object] = []  # the conflicts last published, to publish (and notify) only changes

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [self.ls.spawn(self._loop()), self.ls.spawn(self._poll())]
            self.request()

    async def stop(self) -> None:
        """Stop watching (the client asked the server to shut down): no check runs while the server exits."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def request(self) -> None:
        """Ask for a check soon; any number of requests before it runs cost one."""
        self._wanted.set()

    async def refresh(self) -> dict[Path, ConflictReport]:
        """Check every repository now (cached pairs cost nothing) and publish what changed."""
        checkers: dict[Path, ConflictChecker] = {}
        for folder in await self.ls.repositories():
            main = await self.ls.main_root(folder)
            if main is not None:
                checkers[main] = self._checkers.get(main) or await ConflictChecker.open(folder)
        self._checkers = checkers  # a folder removed from the workspace takes its checker along
        self.reports = {main: await checker.check() for main, checker in checkers.items()}
        self._publish([pair for report in self.reports.values() for pair in report.conflicting])
        return self.reports

    def involving(self, repository: Path, name: str) -> list[OtherWorktree]:
        """The latest conflicts of worktree `name` of `repository` (its main folder) with the other active
        worktrees of that repository (view, merge dialog)."""
        report = self.reports.get(repository)
        pairs = report.involving(name) if report else []
        return [OtherWorktree(worktree=p.b.name, branch=p.b.branch, path=p.b.path, error=p.error, files=p.files)
                for p in pairs]

    async def _loop(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(_SETTLE_S)
            self._wanted.clear()
            try:
                await self.refresh()
            except AdwError as exc:  # not a repository (yet), a branch deleted mid-check: the next change retries
                log.info("conflict check skipped: %s", exc.message)
            except Exception:  # a bug must not stop the watch for the rest of the session
                log.exception("conflict check failed")

    async def _poll(self) -> None:
        stamp = await self._refs_stamps()
        while True:
            await asyncio.sleep(POLL_S)
            now = await self._refs_stamps()
            if now != stamp:
                stamp = now
                self.request()

    async def _refs_stamps(self) -> list[tuple[tuple[str, int], ...]]:
        """Every repository's refs stamp; a folder added or removed changes it too."""
        commons = [common for folder in await self.ls.repositories() if (common := await self.ls.common_dir(folder))]
        return [await asyncio.to_thread(_refs_stamp, common) for common in commons]

    def _publish(self, conflicting: list[PairResult]) -> None:
        shown: list[object] = [(p.a.path, p.b.name, p.b.branch, p.error, p.files) for p in conflicting]
        if shown == self._shown:
            return
        self._shown = shown
        by_uri: dict[str, list[types.Diagnostic]] = {}
        bases: set[Path] = set()
        for pair in conflicting:
            if pair.base:
                assert pair.a.path is not None
                publish_conflicts(self.ls, pair.a.path, [f.path for f in pair.files], pair.b.name)
                bases.add(pair.a.path)
                continue
            for here, there in ((pair, pair.b), (_flipped(pair), pair.a)):
                assert here.a.path is not None
                for file in here.files:
                    by_uri.setdefault(uri_of(here.a.path / file.path), []).append(_diagnostic(there.name,
                                                                                             there.branch, file.kind))
        for gone in self._base_keys - bases:
            publish_conflicts(self.ls, gone, [], "")
        self._base_keys = bases
        replace(self.ls, KEY, by_uri)
        self.ls.changed("worktrees")


def _flipped(pair: PairResult) -> PairResult:
    return pair.model_copy(update={"a": pair.b, "b": pair.a})


def _diagnostic(other: str, branch: str | None, kind: str) -> types.Diagnostic:
    top = types.Range(start=types.Position(0, 0), end=types.Position(0, 0))
    on = f" ({branch})" if branch else ""
    return types.Diagnostic(
        range=top, severity=types.DiagnosticSeverity.Warning, source="adw", code="worktree-conflict",
        message=f"worktree {other}{on} changes this file too: merging both would conflict ({kind})",
    )


def _refs_stamp(common: Path) -> tuple[tuple[str, int], ...]:
    """Modification times of the folders holding branches and checkpoints, `packed-refs`, git's worktree list
    and each linked worktree's HEAD: a commit, a checkpoint, a switch of branch, a new or removed worktree each
    rename a file into one of them."""
    paths = [Path(folder) for top in ("refs/heads", UNDO_NS) for folder, _, _ in os.walk(common / top)]
    paths += [common / "packed-refs", common / "worktrees"]
    with contextlib.suppress(OSError):
        paths += [Path(entry.path) / "HEAD" for entry in os.scandir(common / "worktrees") if entry.is_dir()]
    stamps = []
    for path in paths:
        with contextlib.suppress(OSError):
            stamps.append((str(path), os.stat(path).st_mtime_ns))
    return tuple(stamps)


def register(server: AdwServer) -> None:
    watch = ConflictWatch(server)
    server.conflicts = watch

    def changed(what: str) -> None:
        if what in ("worktrees", "checkpoints"):
            watch.request()

    async def pump(engine: Engine) -> None:
        async with engine.subscribe(types=[TaskFinished, WorkflowFinished]) as events:
            async for _ in events:
                watch.request()

    def start(engine: Engine) -> None:
        server.spawn(pump(engine))

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: AdwServer, params: None) -> None:
        await watch.stop()

    server.on_change.append(changed)
    server.on_initialized.append(watch.start)
    server.engine_listeners.append(start)
