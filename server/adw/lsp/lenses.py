"""Code lenses: start/scout on spec files (plus a live status lens) on the spec's heading, undo/redo/checkpoint
at the top of any file inside a worktree that has checkpoints, and "Undo this file" on the file's first line that
differs from the version that undo restores. Each lens sits on the line it is about, so an editor that runs the
lens under the cursor (Neovim's `codelens.run`) needs no question.

Lenses are requested on every edit and scroll, so everything is cached: the worktree list by the mtime of git's
worktree admin folder, each checkpoint stack by the mtime of its ref folders (any checkpoint, undo or redo
changes them, from this server or the CLI), and which checkpoints changed a file by immutable object ids.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from adw.config import AdwConfig, load_config
from adw.errors import AdwError, ConfigError
from adw.git.checkpoints import Checkpoint, Checkpoints, ref_id
from adw.git.refs import REDO_NS, UNDO_NS, read_head
from adw.git.runner import git
from adw.git.worktrees import Worktrees
from adw.lsp.server import COMMAND_PREFIX, AdwServer
from adw.workflow.models import Workflow

log = logging.getLogger(__name__)


def _line(number: int) -> types.Range:
    return types.Range(start=types.Position(number, 0), end=types.Position(number, 0))




def glob_regex(pattern: str) -> re.Pattern[str]:
    """`specs/**/*.md` as a regex over POSIX relative paths (`**/` may match no folder at all)."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ago(moment: datetime) -> str:
    seconds = max(0, (datetime.now(UTC) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


@dataclass
class _Stack:
    stamp: tuple[int, ...]
    undo: list[Checkpoint]
    redo: list[Checkpoint]
    changed: dict[str, bool] = field(default_factory=dict)


class LensCache:
    def __init__(self, server: AdwServer) -> None:
        self.server = server
        # Each repository's worktree folders (by git common dir), read again when git's worktree folder changes.
        self._worktrees: dict[Path, tuple[int, list[Path]]] = {}
        self._stacks: dict[Path, _Stack] = {}
        self._reloading: set[Path] = set()
        # Worktrees known to equal their newest checkpoint (after our own checkpoint/undo/redo, until a save).
        self.at_checkpoint: set[Path] = set()
        # Worktrees with an open document edited since then: a save would leave the checkpoint, and redo refuses.
        self.edited: set[Path] = set()
        # What undoing from one HEAD back to another uncommits: immutable commit ids, so cached for good.
        self._uncommits: dict[tuple[str, str], str] = {}
        # A file's lines in a checkpoint's tree (None: absent or not text), by immutable tree id.
        self._versions: dict[tuple[str, str], list[str] | None] = {}
        # VS Code draws `$(name)` codicons in lens titles (the extension asks for them); other editors would show
        # the text, and VS Code's lens font shows symbols like ⟲ as empty boxes, so plain clients get no icons.
        self.codicons = False
        # Client-side commands the client offers (`clientCommands`): the VS Code extension draws the timeline.
        self.client_commands: frozenset[str] = frozenset()

    def icon(self, name: str, plain: str = "") -> str:
        return f"$({name}) " if self.codicons else plain

    def mark(self, worktree: Path, at_checkpoint: bool) -> None:
        """Only the worktree a command acted on: a file undo leaves it off its checkpoint (its newest checkpoint
        holds the state before, which a plain undo brings back), and other worktrees are not known to be at one."""
        self.edited.discard(worktree.resolve())
        if at_checkpoint:
            self.at_checkpoint.add(worktree.resolve())
        else:
            self.at_checkpoint.discard(worktree.resolve())
        # The command just changed this stack: drop it, so it is never served stale.
        self._stacks.pop(worktree.resolve(), None)

    async def moved(self, worktree: Path, at_checkpoint: bool) -> None:
        """After our own checkpoint, undo or redo: mark the worktree and read its new stack now, while the
        command still runs, so the lens requests that follow find it cached."""
        self.mark(worktree, at_checkpoint)
        await self.stack(worktree.resolve())

    async def worktree_of(self, path: Path) -> Path | None:
        """The worktree of a workspace folder's repository that holds `path`, if one does."""
        for folder in await self.server.repositories():
            common = await self.server.common_dir(folder)
            if common is None:
                continue
            stamp = _mtime(common / "worktrees")
            cached = self._worktrees.get(common)
            if cached is None or cached[0] != stamp:
                infos = await (await Worktrees.open(folder)).all()
                roots = sorted((info.path for info in infos if not info.prunable), key=lambda p: -len(p.parts))
                self._worktrees[common] = cached = (stamp, roots)
            found = next((root for root in cached[1] if root == path or root in path.parents), None)
            if found is not None:
                return found
        return None

    async def stack(self, worktree: Path) -> tuple[Checkpoints, _Stack]:
        store = await self.server.checkpoints(worktree)
        ident = ref_id(store.repo.worktree_id)
        common = store.repo.common_dir
        stamp = (
            _mtime(common / UNDO_NS / ident), _mtime(common / REDO_NS / ident), _mtime(common / "packed-refs"),
        )
        cached = self._stacks.get(worktree)
        if cached is None:
            undo, redo = await store.stacks()
            cached = self._stacks[worktree] = _Stack(stamp, undo, redo)
        elif cached.stamp != stamp and worktree not in self._reloading:
            # Changed behind our back (an agent's phase checkpoint, the CLI): answer now with what we have and
            # refresh the lenses once the new stack is read, so a lens request never waits on git.
            self._reloading.add(worktree)
            self.server.spawn(self._reload(store, worktree, stamp))
        return store, cached

    async def _reload(self, store: Checkpoints, worktree: Path, stamp: tuple[int, ...]) -> None:
        try:
            undo, redo = await store.stacks()
            self._stacks[worktree] = _Stack(stamp, undo, redo)
        finally:
            self._reloading.discard(worktree)
        if self.server.supports("workspace.code_lens.refresh_support"):
            await self.server.workspace_code_lens_refresh_async(None)

    async def uncommits(self, repo: Path, target: str | None, current: str | None) -> str:
        """" — before commit 'adw: healthz'" when undoing to a checkpoint taken at `target` moves HEAD back from
        `current` (the agent's commits become uncommitted), else ""."""
        if target is None or current is None or target == current:
            return ""
        key = (target, current)
        if key not in self._uncommits:
            try:
                subjects = (await git("log", "--format=%s", f"{target}..{current}", cwd=repo)).stdout
            except AdwError as exc:
                log.warning("commits between %s and %s are unknown: %s", target, current, exc)
                subjects = ""
            lines = subjects.splitlines()
            if not lines:  # not an ancestor: HEAD moves elsewhere
                self._uncommits[key] = f" — moves HEAD to {target[:7]}"
            else:
                more = f" and {len(lines) - 1} later" if len(lines) > 1 else ""
                self._uncommits[key] = f" — before commit '{lines[-1]}'{more}"
        return self._uncommits[key]

    async def file_changed(self, store: Checkpoints, stack: _Stack, rel: str) -> bool:
        if rel not in stack.changed:
            try:
                changed = await store.changed_paths(stack.undo)
            except AdwError as exc:  # a failed git call must not take the file's other lenses with it
                log.warning("which checkpoints changed %s is unknown: %s", rel, exc)
                changed = {}
            stack.changed[rel] = any(rel in paths for paths in changed.values())
        return stack.changed[rel]

    async def version(self, store: Checkpoints, checkpoint: Checkpoint, rel: str) -> list[str] | None:
        key = (checkpoint.tree, rel)
        if key not in self._versions:
            try:
                blob = (await git("cat-file", "blob", f"{checkpoint.tree}:{rel}", cwd=store.repo.root)).stdout
                self._versions[key] = blob.splitlines()
            except AdwError:  # not in that checkpoint (a new file): every line is new
                self._versions[key] = None
        return self._versions[key]

    async def first_change(self, store: Checkpoints, stack: _Stack, rel: str, lines: list[str]) -> int:
        """The first line of `lines` (the file as the editor has it) unlike the version a file undo restores: the
        newest checkpoint's, or when the file equals it, the one before that differs (as `undo_file` picks)."""
        for checkpoint in reversed(stack.undo):
            old = await self.version(store, checkpoint, rel)
            if old != lines:
                same = 0
                for new_line, old_line in zip(lines, old or [], strict=False):
                    if new_line != old_line:
                        break
                    same += 1
                return min(same, max(len(lines) - 1, 0))
        return 0


def register(server: AdwServer) -> None:
    cache = LensCache(server)
    server.lens_cache = cache

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    async def code_lens(ls: AdwServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        fs = to_fs_path(params.text_document.uri)
        if fs is None:
            return []
        path = Path(fs)
        text = _document_lines(ls, params.text_document.uri)
        lenses = await _spec_lenses(ls, cache, path, text)
        try:
            worktree = await cache.worktree_of(path)
            if worktree is not None:
                lenses += await _checkpoint_lenses(cache, worktree, path, text)
        except ConfigError:  # shown by AdwServer.check_config; checkpoint lenses wait for a valid one
            pass
        return lenses

    @server.feature(types.INITIALIZE)
    def initialize(ls: AdwServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        ls.options = dict(options) if isinstance(options, dict) else {}
        cache.codicons = ls.options.get("codicons") is True
        offered = ls.options.get("clientCommands")
        if isinstance(offered, list):
            cache.client_commands = frozenset(name for name in offered if isinstance(name, str))

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(ls: AdwServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        # pygls has updated ls.workspace.folders; the views and lenses now show the repositories of the new set.
        ls.changed("worktrees")
        ls.changed("workflows")

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: AdwServer, params: types.DidChangeTextDocumentParams) -> None:
        fs = to_fs_path(params.text_document.uri)
        edited = Path(fs).resolve() if fs is not None else None
        if edited is not None and any(wt in edited.parents for wt in cache.at_checkpoint - cache.edited):
            # An editor reloading the file an undo rewrote sends a change too: only text unlike the disk's counts.
            text = ls.workspace.get_text_document(params.text_document.uri).source
            if text == await asyncio.to_thread(_read, edited):
                return
            cache.edited |= {wt for wt in cache.at_checkpoint if wt in edited.parents}
            if ls.supports("workspace.code_lens.refresh_support"):
                await ls.workspace_code_lens_refresh_async(None)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: AdwServer, params: types.DidSaveTextDocumentParams) -> None:
        await ls.check_config()  # the saved file may be .adw.toml or pyproject.toml
        fs = to_fs_path(params.text_document.uri)
        if fs is not None:
            saved = Path(fs).resolve()
            cache.at_checkpoint = {wt for wt in cache.at_checkpoint if wt not in saved.parents}
            if ls.supports("workspace.code_lens.refresh_support"):
                await ls.workspace_code_lens_refresh_async(None)


async def _spec_lenses(ls: AdwServer, cache: LensCache, path: Path, text: list[str]) -> list[types.CodeLens]:
    root = next((folder for folder in ls.roots if folder in path.parents), None)
    if root is None:
        return []
    pattern = _spec_pattern(root)
    if not pattern.match(path.relative_to(root).as_posix()):
        return []
    spec = str(path)
    line, title = _heading(text)
    lenses = [
        types.CodeLens(range=_line(line), command=types.Command(
            title=cache.icon("play") + "Start Parallel SDLC", command=COMMAND_PREFIX + "startSdlc",
            arguments=[[spec], {"existing": "ask"}])),
        types.CodeLens(range=_line(line), command=types.Command(
            title=cache.icon("search") + "Scout", command=COMMAND_PREFIX + "scout",
            arguments=[title or path.stem])),
    ]
    running = [wf for engine in ls.open_engines() for wf in engine.workflows()
               if wf.spec == spec and wf.state == "running"]
    for workflow in running[:1]:
        lenses.append(types.CodeLens(range=_line(line), command=types.Command(
            title=cache.icon("sync~spin", "● ") + status_title(workflow), command=COMMAND_PREFIX + "status",
            arguments=[workflow.id])))
        if SHOW_TIMELINE in cache.client_commands:
            lenses.append(types.CodeLens(range=_line(line), command=types.Command(
                title=cache.icon("graph") + "Timeline", command=SHOW_TIMELINE, arguments=[workflow.id])))
    return lenses


SHOW_TIMELINE = "adw.showTimeline"  # the extension's webview of the run (adw.server.timeline)

_patterns: dict[Path, tuple[tuple[int, int], re.Pattern[str]]] = {}


def _spec_pattern(root: Path) -> re.Pattern[str]:
    """The spec glob of the configuration, parsed again only when a configuration file changes."""
    stamp = (_mtime(root / ".adw.toml"), _mtime(root / "pyproject.toml"))
    cached = _patterns.get(root)
    if cached is None or cached[0] != stamp:
        try:
            glob = load_config(root).lsp.spec_glob
        except ConfigError:  # AdwServer.check_config shows it; lenses go on with the default spec glob
            glob = AdwConfig().lsp.spec_glob
        cached = _patterns[root] = (stamp, glob_regex(glob))
    return cached[1]


def status_title(workflow: Workflow) -> str:
    """"build · claude · 1m12s · $0.04" for the running task(s) of a workflow."""
    running = [task for task in workflow.tasks if task.state == "running"]
    phase = " ‖ ".join(task.phase for task in running) or workflow.current_phase or "starting"
    agents = ", ".join(dict.fromkeys(task.agent for task in running)) or "-"
    elapsed = int(time.time() - (workflow.started_at or time.time()))
    parts = [phase, agents, f"{elapsed // 60}m{elapsed % 60:02d}s"]
    cost = workflow.usage.cost_usd
    if cost is not None:
        parts.append(f"${cost:.2f}")
    return " · ".join(parts)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _document_lines(ls: AdwServer, uri: str) -> list[str]:
    """The text as the editor has it (unsaved edits too); pygls reads the file when it is not open (none: [])."""
    try:
        return [line.rstrip("\r\n") for line in ls.workspace.get_text_document(uri).lines]
    except (OSError, ValueError):  # no such file, a NUL in the path, not UTF-8
        return []


def _heading(text: list[str]) -> tuple[int, str | None]:
    """The spec's first Markdown heading: its line and its title (line 0 and None without one)."""
    for number, line in enumerate(text):
        if line.startswith("#"):
            return number, line.lstrip("#").strip() or None
    return 0, None


async def _checkpoint_lenses(cache: LensCache, worktree: Path, path: Path, text: list[str]) -> list[types.CodeLens]:
    store, stack = await cache.stack(worktree)
    if not stack.undo and not stack.redo:
        return []
    where = str(worktree)
    lenses: list[types.CodeLens] = []
    if stack.undo:
        # Undo goes to the newest checkpoint unless the files already equal it; the lens names its real target.
        at_top = worktree in cache.at_checkpoint and len(stack.undo) > 1
        target = stack.undo[-2] if at_top else stack.undo[-1]
        head, _ = read_head(store.repo.git_dir, store.repo.common_dir)
        uncommits = await cache.uncommits(store.repo.root, target.head, head)
        title = f"Undo to checkpoint {target.number} ({ago(target.created)}){uncommits}"
        lenses.append(_lens(cache.icon("history") + title, "undo", [where, None, target.number]))
    # Redo is refused once the files left the checkpoint the undo restored: offered only while they are known
    # to equal it (after our own undo, before any edit or save).
    if stack.redo and worktree in cache.at_checkpoint and worktree not in cache.edited:
        lenses.append(_lens(cache.icon("redo") + "Redo", "redo", [where]))
    lenses.append(_lens(cache.icon("add") + "Checkpoint", "checkpoint", [where]))
    if path != worktree and stack.undo:
        rel = path.relative_to(worktree).as_posix()
        if await cache.file_changed(store, stack, rel):
            line = await cache.first_change(store, stack, rel, text)
            lenses.append(_lens(cache.icon("discard") + "Undo this file", "undo", [where, str(path)], line))
    return lenses


def _lens(title: str, command: str, arguments: list[object], line: int = 0) -> types.CodeLens:
    return types.CodeLens(range=_line(line), command=types.Command(title=title, command=COMMAND_PREFIX + command,
                                                                   arguments=arguments))
