"""`adw.server.*` commands (workspace/executeCommand). Each returns JSON; docs/PROTOCOL.md lists them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types

from adw.agents.preflight import preflight_workflows
from adw.lsp.server import AdwServer, Args, ArgumentError, path_of, uri_of
from adw.serialize import to_jsonable


async def worktree_path(ls: AdwServer, name_or_path: str | None) -> Path:
    """A worktree given by ADW name, branch or path (default: the workspace folder)."""
    from adw.git.worktrees import locate

    # A file URI becomes a path first; the rest is what the CLI's --worktree means.
    if name_or_path and name_or_path.startswith("file:"):
        name_or_path = str(path_of(name_or_path, ls.root))
    return await locate(ls.root, name_or_path)


async def _checkpoints(ls: AdwServer, worktree: str | None) -> Any:
    from adw.git.checkpoints import Checkpoints

    return await Checkpoints.open(await worktree_path(ls, worktree))


async def _worktrees(ls: AdwServer) -> Any:
    from adw.git.worktrees import Worktrees

    return await Worktrees.open(ls.root)


def register(server: AdwServer) -> None:
    @server.adw_command("startSdlc")
    async def start_sdlc(ls: AdwServer, *values: Any) -> Any:
        args = Args("startSdlc", values, ["specs", "options"])
        specs = [path_of(spec, ls.root) for spec in args.texts("specs")]
        options = args.options("options")
        missing = [str(spec) for spec in specs if not spec.is_file()]
        if missing:
            raise ArgumentError(f"no such spec: {', '.join(missing)}", "pass Markdown files of the workspace")
        from adw.git.repo import Repo
        from adw.workflow.sdlc import sdlc_workflows

        engine = await ls.engine()
        if isinstance(options.get("maxAgents"), int):
            engine.max_agents = options["maxAgents"]
        repo = await Repo.discover(ls.root)
        workflows = await sdlc_workflows(repo.root, specs, engine.config, store=engine.store)
        await preflight_workflows(workflows)  # a missing CLI or login is an error now, not after retries
        for workflow in workflows:
            ls.spawn(engine.run(workflow))
        ls.changed("workflows")
        return {"workflows": [{"id": wf.id, "name": wf.name, "spec": wf.spec} for wf in workflows]}

    @server.adw_command("scout")
    async def scout(ls: AdwServer, *values: Any) -> Any:
        args = Args("scout", values, ["task", "worktree", "top"])
        task = args.required("task")
        root = await worktree_path(ls, args.text("worktree"))
        from adw.lsp.links import show_best, write_report
        from adw.scouts import save_report
        from adw.scouts import scout as run_scout

        report = await run_scout(task, root, top=args.number("top") or 10)
        await save_report(report, root)  # relevant_files.json beside the Markdown report, as the CLI leaves it
        report_path = await write_report(root, report)
        locations = [
            types.Location(uri=uri_of(root / loc.path), range=_line_range(loc.line)) for loc in report.locations
        ]
        shown = await show_best(ls, locations)
        result = to_jsonable(report)
        result["lspLocations"] = [ls.protocol._converter.unstructure(loc) for loc in locations]
        result["reportUri"] = uri_of(report_path)
        result["shown"] = shown
        return result

    @server.adw_command("listWorktrees")
    async def list_worktrees(ls: AdwServer, *values: Any) -> Any:
        Args("listWorktrees", values, [])
        return to_jsonable(await (await _worktrees(ls)).all(status=True))

    @server.adw_command("createWorktree")
    async def create_worktree(ls: AdwServer, *values: Any) -> Any:
        args = Args("createWorktree", values, ["name", "base"])
        name = args.required("name")
        result = await (await _worktrees(ls)).create(name, base=args.text("base"))
        ls.changed("worktrees")
        return to_jsonable(result)

    @server.adw_command("mergePreview")
    async def merge_preview(ls: AdwServer, *values: Any) -> Any:
        args = Args("mergePreview", values, ["name", "into"])
        name = args.required("name")
        manager = await _worktrees(ls)
        preview = await manager.merge_preview(name, args.text("into"))
        info = await manager.get(name)
        from adw.lsp.diagnostics import publish_conflicts

        publish_conflicts(ls, info.path, preview.conflicts, preview.target)
        return to_jsonable(preview)

    @server.adw_command("merge")
    async def merge(ls: AdwServer, *values: Any) -> Any:
        args = Args("merge", values, ["name", "strategy", "into"])
        name = args.required("name")
        strategy = args.text("strategy") or "merge"
        if strategy not in ("merge", "squash", "rebase"):
            raise ArgumentError(f"unknown strategy {strategy!r}", "use merge, squash or rebase")
        manager = await _worktrees(ls)
        result = await manager.merge(name, args.text("into"), strategy)
        from adw.lsp.diagnostics import publish_conflicts

        publish_conflicts(ls, (await manager.get(name)).path, result.preview.conflicts, result.preview.target)
        ls.changed("worktrees")
        return to_jsonable(result)

    @server.adw_command("removeWorktree")
    async def remove_worktree(ls: AdwServer, *values: Any) -> Any:
        args = Args("removeWorktree", values, ["name", "archive", "force"])
        name = args.required("name")
        result = await (await _worktrees(ls)).remove(name, archive=args.flag("archive"), force=args.flag("force"))
        from adw.lsp.diagnostics import clear_under

        clear_under(ls, result.path)
        ls.changed("worktrees")
        return to_jsonable(result)

    @server.adw_command("checkpoint")
    async def checkpoint(ls: AdwServer, *values: Any) -> Any:
        args = Args("checkpoint", values, ["worktree", "message"])
        store = await _checkpoints(ls, args.text("worktree"))
        result = await store.checkpoint(args.text("message") or "")
        await _moved(ls, store, at_checkpoint=True)
        return to_jsonable(result)

    @server.adw_command("undo")
    async def undo(ls: AdwServer, *values: Any) -> Any:
        args = Args("undo", values, ["worktree", "file", "to"])
        store = await _checkpoints(ls, args.text("worktree"))
        file = args.text("file")
        if file:  # a relative path is inside the worktree acted on, not the workspace folder
            result = await store.undo_file(str(path_of(file, store.repo.root)), args.number("to"))
        else:
            result = await store.undo(args.number("to"))
        await _moved(ls, store, at_checkpoint=not file)
        return to_jsonable(result)

    @server.adw_command("redo")
    async def redo(ls: AdwServer, *values: Any) -> Any:
        args = Args("redo", values, ["worktree"])
        store = await _checkpoints(ls, args.text("worktree"))
        result = await store.redo()
        await _moved(ls, store, at_checkpoint=True)
        return to_jsonable(result)

    @server.adw_command("listCheckpoints")
    async def list_checkpoints(ls: AdwServer, *values: Any) -> Any:
        args = Args("listCheckpoints", values, ["worktree", "file"])
        store = await _checkpoints(ls, args.text("worktree"))
        file = args.text("file")
        path = str(path_of(file, store.repo.root)) if file else None
        return to_jsonable(await store.history(file=path, include_redo=True))

    @server.adw_command("cancel")
    async def cancel(ls: AdwServer, *values: Any) -> Any:
        args = Args("cancel", values, ["workflow", "task"])
        workflow = args.required("workflow")
        engine = await ls.engine()
        task = args.text("task")
        tasks = [t.id for t in engine.get(workflow).tasks]
        if task and task not in tasks:
            raise ArgumentError(f"workflow {workflow} has no task {task!r}", f"its tasks are {', '.join(tasks)}")
        cancelled = engine.cancel(workflow, task)
        if not cancelled and engine.store is not None:
            engine.store.request_cancel(workflow, task)  # run by another ADW process: it polls for requests
        return {"workflow": workflow, "task": task, "cancelled": True}

    @server.adw_command("resume")
    async def resume(ls: AdwServer, *values: Any) -> Any:
        args = Args("resume", values, ["workflow"])
        workflow = args.required("workflow")
        engine = await ls.engine()
        engine.get(workflow)
        ls.spawn(engine.resume(workflow))
        ls.changed("workflows")
        return {"workflow": workflow, "resumed": True}

    @server.adw_command("status")
    async def status(ls: AdwServer, *values: Any) -> Any:
        args = Args("status", values, ["workflow"])
        engine = await ls.engine()
        workflow = args.text("workflow")
        if workflow:
            return to_jsonable(engine.get(workflow))
        return to_jsonable(await all_workflows(engine))


async def _moved(ls: AdwServer, store: Any, at_checkpoint: bool) -> None:
    """After a checkpoint, undo or redo: tell the lenses whether that worktree now equals its newest checkpoint
    (so "Undo to checkpoint N" names the one an undo goes to), then notify."""
    if ls.lens_cache is not None:
        await ls.lens_cache.moved(store.repo.root, at_checkpoint)
    ls.changed("checkpoints")


async def all_workflows(engine: Any) -> list[Any]:
    """Live workflows of this server first, then the stored ones of the repository (other processes' too).
    Reading and parsing the stored ones takes tens of milliseconds, so it runs off the event loop."""
    live = {wf.id: wf for wf in engine.workflows()}
    stored = await asyncio.to_thread(engine.store.recent) if engine.store is not None else []
    merged = {**{wf.id: wf for wf in stored}, **live}
    return sorted(merged.values(), key=lambda wf: wf.created_at, reverse=True)


def _line_range(line: int) -> types.Range:
    start = types.Position(line=max(line - 1, 0), character=0)
    return types.Range(start=start, end=start)
