"""`adw.server.*` commands (workspace/executeCommand). Each takes its typed arguments (adw/lsp/params.py) and
returns JSON; docs/PROTOCOL.md lists them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Literal

from lsprotocol import types

from adw.agents.preflight import preflight, preflight_workflows
from adw.config import phase_configs
from adw.errors import AdwError, RerunAction
from adw.forge.client import connect
from adw.forge.issues import issue_spec
from adw.forge.pr import PrOutcome, open_pull_request, pick_as_pull_request
from adw.forge.providers import Provider
from adw.git.checkpoints import Checkpoints
from adw.git.repo import Repo
from adw.git.worktrees import Worktrees, locate
from adw.lsp import params
from adw.lsp.diagnostics import clear_under, publish_conflicts
from adw.lsp.links import locations_of, show_best, write_report
from adw.lsp.params import ArgumentError, P
from adw.lsp.server import AdwServer, Handler, RequestFailed, path_of, uri_of
from adw.scouts import save_report
from adw.scouts import scout as run_scout
from adw.sdlc.best_of import compare, pick
from adw.sdlc.pipeline import Existing, ExistingWorktree, WorktreeExistsError, sdlc_workflows
from adw.serialize import to_jsonable
from adw.workflow.engine import Engine, join_run
from adw.workflow.models import TaskState, Workflow
from adw.workflow.store import Store

# Each handler takes its own model; the list can only say "some Params" (Any), its pairs keep them matched.
_HANDLERS: list[tuple[type[params.Params], Callable[[AdwServer, Any], Awaitable[object]]]] = []


def handles(model: type[P]) -> Callable[[Handler[P]], Handler[P]]:
    """Declare the handler of the command `model` describes; `register` hands them all to the server."""

    def add(handler: Handler[P]) -> Handler[P]:
        _HANDLERS.append((model, handler))
        return handler

    return add


def register(server: AdwServer) -> None:
    for model, handler in _HANDLERS:
        server.adw_command(model, handler)


async def worktree_path(ls: AdwServer, name_or_path: str | None) -> Path:
    """A worktree of a workspace folder's repository given by path or file URI (its repository is the one that
    holds it), or by ADW name or branch (the first folder's repository that has it); default: the first folder.
    A folder of any other repository is refused: a command must not touch it."""
    if not name_or_path:
        return ls.root
    # A file URI becomes a path first; the rest is what the CLI's --worktree means.
    if name_or_path.startswith("file:"):
        name_or_path = str(path_of(name_or_path, ls.root))
    first: AdwError | None = None
    for folder in await ls.repositories():
        try:
            path = await locate(folder, name_or_path)
        except AdwError as exc:
            first = first or exc
            continue
        try:
            await ls.folder_of(path)  # a path may lead out of the workspace's repositories
        except ArgumentError:
            break
        return path
    if first is not None and not Path(name_or_path).is_absolute():
        raise first
    raise ArgumentError(
        f"{name_or_path} is not a worktree of the workspace's repository",
        "pass the name or path of one of its worktrees (see the Worktrees view)",
    )


async def _manager_of(ls: AdwServer, name: str, repository: str | None) -> Worktrees:
    """The worktree manager of `repository` (a path in it), else of the repository that has a worktree called
    `name` (the first folder's first)."""
    if repository:
        return await Worktrees.open(await ls.folder(repository))
    managers = [await Worktrees.open(folder) for folder in await ls.repositories()]
    for manager in managers[1:]:
        if any(name in (info.name, info.branch, info.path.name) for info in await manager.all()):
            return manager
    return managers[0]  # has it, or says it has not


async def _checkpoints(ls: AdwServer, worktree: str | None) -> Checkpoints:
    return await ls.checkpoints(await worktree_path(ls, worktree))


# Makes the workflows of the specs (when a worktree exists: refuse, or run in a new one, as `Existing` says).
MakeWorkflows = Callable[[list[Path], Existing], Awaitable[list[Workflow]]]


@handles(params.StartSdlc)
async def start_sdlc(ls: AdwServer, args: params.StartSdlc) -> object:
    specs = [path_of(spec, ls.root) for spec in args.specs]
    missing = [str(spec) for spec in specs if not spec.is_file()]
    if missing:
        raise ArgumentError(f"no such spec: {', '.join(missing)}", "pass Markdown files of the workspace")
    folders = {await ls.folder_of(spec) for spec in specs}
    if len(folders) > 1:
        raise ArgumentError("the specs belong to different repositories", "start one repository's specs at a time")
    folder = folders.pop()
    engine = await ls.engine(folder)
    repo = await Repo.discover(folder)

    async def make(chosen: list[Path], existing: Existing) -> list[Workflow]:
        return await sdlc_workflows(repo.root, chosen, engine.config, existing=existing, store=engine.store)

    return await _start(ls, folder, engine, specs, args.options, make, engine.run)


@handles(params.SdlcFromIssue)
async def sdlc_from_issue(ls: AdwServer, args: params.SdlcFromIssue) -> object:
    """`adw sdlc --issue N [--pr]` from the editor, in the repository `repository` names (default: the first
    folder's): a missing login refuses before anything is read or made; with `pr`, the workflow's draft pull
    request is opened when it is done and the editor told (a message with its link)."""
    folder = await ls.folder(args.repository)
    engine = await ls.engine(folder)
    repo = await Repo.discover(folder)
    provider = await connect(repo.root, engine.config.forge)
    keep_open = False
    try:
        spec, config = await issue_spec(repo, provider, args.issue, engine.config)

        async def make(specs: list[Path], existing: Existing) -> list[Workflow]:
            return await sdlc_workflows(repo.root, specs, config, existing=existing, store=engine.store)

        async def run_then_pr(workflow: Workflow) -> None:
            try:
                await engine.run(workflow)
                await _report_pull_request(ls, repo.root, workflow, provider)
            finally:
                await provider.aclose()

        started = await _start(ls, folder, engine, [spec], args.options, make,
                               run_then_pr if args.pr else engine.run)
        keep_open = args.pr and bool(started["workflows"])  # closed by run_then_pr
    finally:
        if not keep_open:
            await provider.aclose()
    return started


async def _report_pull_request(ls: AdwServer, root: Path, workflow: Workflow, provider: Provider) -> None:
    """Open the finished workflow's draft and say so: a message with its link, or why there is none."""
    try:
        outcome = await open_pull_request(root, workflow, provider)
    except AdwError as exc:
        hint = f" — {exc.editor_hint}" if exc.editor_hint else ""
        ls.window_show_message(types.ShowMessageParams(
            type=types.MessageType.Error, message=f"ADW: no pull request for {workflow.name}: {exc.message}{hint}"))
        return
    pr = outcome.pull_request
    verb = "opened draft" if pr.created else "updated"
    _opened(ls, outcome)
    ls.window_show_message(types.ShowMessageParams(
        type=types.MessageType.Info, message=f"ADW: {verb} pull request [#{pr.number}]({pr.url}) for {workflow.name}."))


async def _start(
    ls: AdwServer, folder: Path, engine: Engine, specs: list[Path], options: params.SdlcOptions,
    make: MakeWorkflows, run: Callable[[Workflow], Coroutine[Any, Any, object]],
) -> dict[str, list[dict[str, object]]]:
    """Make the specs' workflows (resolving existing worktrees as `options.existing` says), check their agents,
    then run each in the background with `run`."""
    if options.max_agents is not None:
        engine.set_max_agents(options.max_agents)
    engine.choose_executor(None if options.executor == "config" else options.executor, options.address)
    existing = options.existing
    try:
        workflows = await make(specs, "again" if existing == "again" else "refuse")
        resumed: list[Workflow] = []
    except WorktreeExistsError as exc:
        choice = await _ask(ls, exc) if existing == "ask" else existing
        if choice == "refuse":
            raise _choices(exc) from None
        if choice is None:  # the user dismissed the question: nothing starts
            return {"workflows": []}
        resumed, workflows = await _rerun(folder, engine, specs, exc, choice, make)
    await preflight_workflows([*resumed, *workflows])  # a missing CLI or login is an error now, not after retries
    join_run([*resumed, *workflows])  # started together: one run, one timeline
    for workflow in [*resumed, *workflows]:
        ls.spawn(run(workflow))
    ls.changed("workflows")
    return {
        "workflows": [
            {"id": wf.id, "name": wf.name, "spec": wf.spec, "resumed": wf in resumed} for wf in [*resumed, *workflows]
        ]
    }


EXISTING_CHOICES = ("resume", "again", "replace")  # startSdlc's options.existing, besides "refuse"


def _choices(exc: WorktreeExistsError) -> RequestFailed:
    """The refusal a client answers by asking the user (the extension offers Resume / Run in a New Worktree /
    Remove and Rerun): no message is shown here, the error carries the worktrees and the choices."""
    hint = (
        'start it again with options.existing: "resume" (its workflow), "again" (a new worktree) '
        'or "replace" (archive and remove the worktree first)'
    )
    data = {
        **exc.to_dict(),
        "hint": hint,
        "existing": to_jsonable(exc.existing),
        "choices": list(EXISTING_CHOICES),
        "actions": [action.model_dump() for action in exc.actions],  # the editor's buttons for these choices
    }
    return RequestFailed(f"{exc.message} — {exc.editor_hint}", data=data)


Rerun = Literal["resume", "again", "replace"]


async def _ask(ls: AdwServer, exc: WorktreeExistsError) -> Rerun | None:
    """The choices the workflows' states allow (Resume only for a stopped one), as the toast's buttons."""
    choices: dict[str, Rerun] = {action.title: action.existing for action in exc.actions
                                 if isinstance(action, RerunAction)}
    picked = await ls.window_show_message_request_async(
        types.ShowMessageRequestParams(
            type=types.MessageType.Warning, message=f"ADW: {exc.message} — {exc.editor_hint}.",
            actions=[types.MessageActionItem(title=title) for title in choices],
        )
    )
    return choices.get(picked.title) if picked is not None else None


async def _rerun(
    folder: Path, engine: Engine, specs: list[Path], exc: WorktreeExistsError, choice: Rerun, make: MakeWorkflows
) -> tuple[list[Workflow], list[Workflow]]:
    """The workflows resumed and the ones made for the specs, once the user chose what to do with the
    worktrees that exist. Everything is decided before any of them starts."""
    if choice == "again":
        return [], await make(specs, "again")
    there = {Path(entry.spec) for entry in exc.existing}
    resumed: list[Workflow] = []
    if choice == "resume":
        resumed = [_resumable(engine, entry) for entry in exc.existing]
    else:  # replace: archived first, so nothing is lost (`adw worktree restore` brings it back)
        await preflight(phase_configs(engine.config), folder)  # a missing agent refuses before anything goes
        manager = await Worktrees.open(folder)
        for entry in exc.existing:
            _not_running(entry)
            await manager.remove(entry.worktree, archive=True)
        there = set()
    fresh = [spec for spec in specs if spec.resolve() not in there]
    return resumed, await make(fresh, "refuse") if fresh else []


def _not_running(entry: ExistingWorktree) -> None:
    if entry.workflow_state is TaskState.RUNNING:
        raise AdwError(f"workflow {entry.workflow_id} is running in {entry.path}", "wait for it or cancel it first")


def _resumable(engine: Engine, entry: ExistingWorktree) -> Workflow:
    if entry.workflow_id is None:
        raise AdwError(
            f"{entry.path} holds no ADW workflow of {Path(entry.spec).name} to resume",
            "run the spec again in a new worktree, or remove that worktree first",
        )
    _not_running(entry)
    return engine.prepare_resume(entry.workflow_id)


@handles(params.Scout)
async def scout(ls: AdwServer, args: params.Scout) -> object:
    root = await worktree_path(ls, args.worktree)
    report = await run_scout(args.task, root, top=args.top or 10)
    await save_report(report, root)  # relevant_files.json beside the Markdown report, as the CLI leaves it
    if args.top:  # the editor shows `top` locations, best first (the plan still gets the tests and docs found)
        report = report.model_copy(update={"locations": report.locations[: args.top]})
    report_path = await write_report(root, report)
    locations = await locations_of(root, report.locations)
    shown = await show_best(ls, locations)
    result = to_jsonable(report)
    result["lspLocations"] = [ls.protocol._converter.unstructure(loc) for loc in locations]
    result["reportUri"] = uri_of(report_path)
    result["shown"] = shown
    return result


@handles(params.ListWorktrees)
async def list_worktrees(ls: AdwServer, args: params.ListWorktrees) -> object:
    return await all_worktrees(ls)


async def all_worktrees(ls: AdwServer) -> list[dict[str, object]]:
    """The worktrees of every workspace folder's repository, each with `repository` (its main folder)."""
    infos: list[dict[str, object]] = []
    for folder in await ls.repositories():
        manager = await Worktrees.open(folder)
        for info in to_jsonable(await manager.all(status=True)):
            infos.append({**info, "repository": str(manager.repo.main_root)})
    return infos


@handles(params.CreateWorktree)
async def create_worktree(ls: AdwServer, args: params.CreateWorktree) -> object:
    result = await (await Worktrees.open(await ls.folder(args.repository))).create(args.name, base=args.base)
    ls.changed("worktrees")
    return to_jsonable(result)


@handles(params.MergePreview)
async def merge_preview(ls: AdwServer, args: params.MergePreview) -> object:
    manager = await _manager_of(ls, args.name, args.repository)
    preview = await manager.merge_preview(args.name, args.into)
    info = await manager.get(args.name)
    publish_conflicts(ls, info.path, preview.conflicts, preview.target)
    result = to_jsonable(preview)
    # The merge dialog warns when the branch also conflicts with another worktree that is still active.
    if ls.conflicts is not None:
        await ls.conflicts.refresh()
        result["activeConflicts"] = to_jsonable(ls.conflicts.involving(manager.repo.main_root, info.name))
    return result


@handles(params.Merge)
async def merge(ls: AdwServer, args: params.Merge) -> object:
    manager = await _manager_of(ls, args.name, args.repository)
    result = await manager.merge(args.name, args.into, args.strategy)
    publish_conflicts(ls, (await manager.get(args.name)).path, result.preview.conflicts, result.preview.target)
    ls.changed("worktrees")
    return to_jsonable(result)


@handles(params.RemoveWorktree)
async def remove_worktree(ls: AdwServer, args: params.RemoveWorktree) -> object:
    manager = await _manager_of(ls, args.name, args.repository)
    result = await manager.remove(args.name, archive=args.archive, force=args.force)
    clear_under(ls, result.path)
    ls.changed("worktrees")
    return to_jsonable(result)


@handles(params.Compare)
async def compare_candidates(ls: AdwServer, args: params.Compare) -> object:
    return to_jsonable(await compare(_store(await ls.engine_of(args.id)), args.id))


@handles(params.Pick)
async def pick_candidate(ls: AdwServer, args: params.Pick) -> object:
    engine = await ls.engine_of(args.id)
    opened: PrOutcome | None = None
    if args.pr:  # its draft pull request first: a missing login or a refused push archives nothing
        result, opened = await pick_as_pull_request(_store(engine), args.id, args.number, engine.config.forge)
    else:
        result = await pick(_store(engine), args.id, args.number, args.strategy)
    for archived in result.archived:
        clear_under(ls, archived.path)
    if opened is not None:
        _opened(ls, opened)
    ls.changed("worktrees")
    return {**to_jsonable(result), "pull_request": to_jsonable(opened) if opened else None}


def _store(engine: Engine) -> Store:
    if engine.store is None:
        raise AdwError("this engine keeps no workflows", "open the repository's folder in the editor")
    return engine.store


@handles(params.Checkpoint)
async def checkpoint(ls: AdwServer, args: params.Checkpoint) -> object:
    store = await _checkpoints(ls, args.worktree)
    result = await store.checkpoint(args.message)
    await _moved(ls, store, at_checkpoint=True)
    return to_jsonable(result)


@handles(params.Undo)
async def undo(ls: AdwServer, args: params.Undo) -> object:
    store = await _checkpoints(ls, args.worktree)
    if args.file:  # a relative path is inside the worktree acted on, not the workspace folder
        result: object = await store.undo_file(str(path_of(args.file, store.repo.root)), args.to)
    else:
        result = await store.undo(args.to)
    await _moved(ls, store, at_checkpoint=not args.file)
    return to_jsonable(result)


@handles(params.Redo)
async def redo(ls: AdwServer, args: params.Redo) -> object:
    store = await _checkpoints(ls, args.worktree)
    result = await store.redo()
    await _moved(ls, store, at_checkpoint=True)
    return to_jsonable(result)


@handles(params.ListCheckpoints)
async def list_checkpoints(ls: AdwServer, args: params.ListCheckpoints) -> object:
    store = await _checkpoints(ls, args.worktree)
    path = str(path_of(args.file, store.repo.root)) if args.file else None
    return to_jsonable(await store.history(file=path, include_redo=True))


@handles(params.CheckpointChanges)
async def checkpoint_changes(ls: AdwServer, args: params.CheckpointChanges) -> object:
    store = await _checkpoints(ls, args.worktree)
    files = await store.changes(args.number, args.to)
    return {"worktree": str(store.repo.root), "number": args.number, "to": args.to, "files": to_jsonable(files)}


@handles(params.CheckpointFile)
async def checkpoint_file(ls: AdwServer, args: params.CheckpointFile) -> object:
    store = await _checkpoints(ls, args.worktree)
    data = await store.file_at(args.number, args.file)
    binary = data is not None and b"\0" in data[:8192]
    text = "" if data is None or binary else data.decode("utf-8", "replace")
    return {"exists": data is not None, "binary": binary, "text": text}


@handles(params.Cancel)
async def cancel(ls: AdwServer, args: params.Cancel) -> object:
    engine = await ls.engine_of(args.workflow)
    tasks = [t.id for t in engine.get(args.workflow).tasks]
    if args.task and args.task not in tasks:
        raise ArgumentError(
            f"workflow {args.workflow} has no task {args.task!r}", f"its tasks are {', '.join(tasks)}"
        )
    cancelled = engine.cancel(args.workflow, args.task)
    if not cancelled and engine.store is not None:
        engine.store.request_cancel(args.workflow, args.task)  # run by another ADW process: it polls for requests
    return {"workflow": args.workflow, "task": args.task, "cancelled": True}


@handles(params.Resume)
async def resume(ls: AdwServer, args: params.Resume) -> object:
    engine = await ls.engine_of(args.workflow)
    engine.get(args.workflow)
    ls.spawn(engine.resume(args.workflow))
    ls.changed("workflows")
    return {"workflow": args.workflow, "resumed": True}


@handles(params.CreatePullRequest)
async def create_pull_request(ls: AdwServer, args: params.CreatePullRequest) -> object:
    engine = await ls.engine_of(args.workflow)
    workflow = engine.get(args.workflow)
    provider = await connect(Path(workflow.repo), engine.config.forge)
    try:
        outcome = await open_pull_request(Path(workflow.repo), workflow, provider, base=args.base)
    finally:
        await provider.aclose()
    _opened(ls, outcome)
    return to_jsonable(outcome)


def _opened(ls: AdwServer, outcome: PrOutcome) -> None:
    """A pull request was opened or updated: the Worktrees view shows it at its next poll, not a minute later."""
    for reviews in ls.reviews.values():  # a branch name, so each repository's watch asks again: one call at most
        reviews.forget(outcome.branch)
    ls.changed("worktrees")


@handles(params.Status)
async def status(ls: AdwServer, args: params.Status) -> object:
    if args.workflow:
        return to_jsonable((await ls.engine_of(args.workflow)).get(args.workflow))
    return to_jsonable(await every_workflow(ls))


async def _moved(ls: AdwServer, store: Checkpoints, at_checkpoint: bool) -> None:
    """After a checkpoint, undo or redo: tell the lenses whether that worktree now equals its newest checkpoint
    (so "Undo to checkpoint N" names the one an undo goes to), then notify."""
    if ls.lens_cache is not None:
        await ls.lens_cache.moved(store.repo.root, at_checkpoint)
    ls.changed("checkpoints")


async def every_workflow(ls: AdwServer) -> list[Workflow]:
    """The workflows of every workspace folder's repository, newest first."""
    merged = [wf for folder in await ls.repositories() for wf in await all_workflows(await ls.engine(folder))]
    return sorted(merged, key=lambda wf: wf.created_at, reverse=True)


async def all_workflows(engine: Engine) -> list[Workflow]:
    """Live workflows of this server first, then the stored ones of the repository (other processes' too).
    Reading and parsing the stored ones takes tens of milliseconds, so it runs off the event loop."""
    live = {wf.id: wf for wf in engine.workflows()}
    stored = await asyncio.to_thread(engine.store.recent) if engine.store is not None else []
    merged = {**{wf.id: wf for wf in stored}, **live}
    return sorted(merged.values(), key=lambda wf: wf.created_at, reverse=True)

