"""The custom protocol behind the extension's views: `adw/worktrees`, `adw/workflows`, `adw/checkpoints` and
`adw/pullRequests` requests (the `adw/changed` notification is sent by AdwServer.changed)."""

from __future__ import annotations

from pathlib import Path

from adw.forge.status import ReviewWatch
from adw.git.checkpoints import Checkpoints
from adw.git.worktrees import Worktrees
from adw.lsp.commands import all_worktrees, every_workflow, worktree_path
from adw.lsp.params import ArgumentError, CheckpointsRequest, PullRequestsRequest, validate
from adw.lsp.server import AdwServer, path_of
from adw.serialize import to_jsonable


def _fields(params: object, method: str) -> dict[str, object]:
    """pygls hands a custom request's object params over as a namedtuple; null is no params."""
    if params is None:
        return {}
    as_dict = getattr(params, "_asdict", None)
    if as_dict is None:
        raise ArgumentError(f"{method}: params must be an object or null", "see docs/PROTOCOL.md")
    return dict(as_dict())


def register(server: AdwServer) -> None:
    @server.adw_request("adw/worktrees")
    async def worktrees(ls: AdwServer, params: object) -> list[dict[str, object]]:
        infos = await all_worktrees(ls)
        if ls.conflicts is not None:
            await ls.conflicts.refresh()
        running: dict[str, int] = {}
        for engine in ls.open_engines():
            for workflow in engine.workflows():
                busy = sum(1 for task in workflow.tasks if task.state == "running" and task.kind == "agent")
                running[str(Path(workflow.cwd))] = running.get(str(Path(workflow.cwd)), 0) + busy
        for info in infos:
            info["agentsRunning"] = running.get(str(info["path"]), 0)
            # predicted conflicts with the other active worktrees of its repository (adw.lsp.conflicts)
            conflicts = ls.conflicts
            others = conflicts.involving(Path(str(info["repository"])), str(info["name"])) if conflicts else []
            info["conflicts"] = to_jsonable(others)
        return list(infos)

    @server.adw_request("adw/workflows")
    async def workflows(ls: AdwServer, params: object) -> list[dict[str, object]]:
        return list(to_jsonable(await every_workflow(ls)))

    @server.adw_request("adw/checkpoints")
    async def checkpoints(ls: AdwServer, params: object) -> dict[str, object]:
        args = validate(CheckpointsRequest, _fields(params, "adw/checkpoints"), "adw/checkpoints")
        root = await worktree_path(ls, args.worktree)
        store = await Checkpoints.open(root)
        # `file` is a path inside the worktree or a file URI, as for listCheckpoints
        path = str(path_of(args.file, store.repo.root)) if args.file else None
        entries = await store.history(file=path, include_redo=True)
        return {"worktree": str(root), "checkpoints": to_jsonable(entries)}

    @server.adw_request("adw/pullRequests")
    async def pull_requests(ls: AdwServer, params: object) -> dict[str, object]:
        """Each worktree branch's pull request and CI state, in the repository `repository` names (default: the
        first folder's); `available: false` with the reason (no forge, no login) is an answer, not an error, so
        that a view can say it quietly."""
        args = validate(PullRequestsRequest, _fields(params, "adw/pullRequests"), "adw/pullRequests")
        manager = await Worktrees.open(await ls.folder(args.repository))
        repo = manager.repo
        branches = [info.branch for info in await manager.all() if info.branch]
        # one watch per repository: its forge, its provider's ETags and each of its branches' last answer
        reviews = ls.reviews.setdefault(repo.main_root, ReviewWatch())
        status = await reviews.status(repo.root, manager.config.forge, branches, refresh=args.refresh)
        return dict(to_jsonable(status))
