"""The custom protocol behind the extension's views: `adw/worktrees`, `adw/workflows`, `adw/checkpoints`
requests (the `adw/changed` notification is sent by AdwServer.changed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adw.lsp.commands import all_workflows, worktree_path
from adw.lsp.server import AdwServer, path_of
from adw.serialize import to_jsonable


def _param(params: Any, name: str) -> Any:
    return getattr(params, name, None) if params is not None else None


def register(server: AdwServer) -> None:
    @server.feature("adw/worktrees")
    async def worktrees(ls: AdwServer, params: Any) -> list[dict[str, Any]]:
        from adw.git.worktrees import Worktrees

        infos = to_jsonable(await (await Worktrees.open(ls.root)).all(status=True))
        engine = ls.engine_if_open()
        running: dict[str, int] = {}
        if engine is not None:
            for workflow in engine.workflows():
                busy = sum(1 for task in workflow.tasks if task.state == "running" and task.kind == "agent")
                running[str(Path(workflow.cwd))] = running.get(str(Path(workflow.cwd)), 0) + busy
        for info in infos:
            info["agentsRunning"] = running.get(info["path"], 0)
        return list(infos)

    @server.feature("adw/workflows")
    async def workflows(ls: AdwServer, params: Any) -> list[dict[str, Any]]:
        return list(to_jsonable(await all_workflows(await ls.engine())))

    @server.feature("adw/checkpoints")
    async def checkpoints(ls: AdwServer, params: Any) -> dict[str, Any]:
        from adw.git.checkpoints import Checkpoints

        root = await worktree_path(ls, _param(params, "worktree"))
        store = await Checkpoints.open(root)
        file = _param(params, "file")  # a path inside the worktree or a file URI, as for listCheckpoints
        entries = await store.history(file=str(path_of(file, store.repo.root)) if file else None, include_redo=True)
        return {"worktree": str(root), "checkpoints": to_jsonable(entries)}
