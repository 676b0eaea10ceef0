"""`adw forge` (what the repository's forge is and how ADW authenticates to it) and `adw pr ID` (push a
finished workflow's branch, open or update its draft pull request, comment on its issue)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adw.cli.output import add_json_flag, emit
from adw.config import load_config
from adw.errors import AdwError
from adw.forge.auth import plan
from adw.forge.client import connect
from adw.forge.pr import PrOutcome, open_pull_request
from adw.forge.providers import Provider
from adw.forge.remotes import detect
from adw.git.repo import Repo
from adw.sdlc.engine import open_engine
from adw.workflow.models import Workflow


def register(subparsers: Any) -> None:
    forge = subparsers.add_parser(
        "forge",
        help="the repository's forge (GitHub, GitLab, Bitbucket) and how ADW will authenticate to it",
        description="Detects the forge from the remote ([tool.adw.forge] remote, default origin) and says which "
        "login ADW will use: the provider's CLI (gh, glab) when logged in, else a token from the environment.",
    )
    add_json_flag(forge)
    forge.set_defaults(handler=_forge)

    pr = subparsers.add_parser(
        "pr",
        help="push a finished workflow's branch and open (or update) its draft pull request",
        description="Pushes the workflow's branch (never over commits ADW did not push), creates or updates one "
        "draft pull/merge request whose body sums up the phases, and comments the outcome on the workflow's issue.",
    )
    pr.add_argument("id", help="a workflow id (a unique prefix will do)")
    pr.add_argument("--base", metavar="BRANCH", help="the branch to merge into (default: the one it started from)")
    add_json_flag(pr)
    pr.set_defaults(handler=_pr)


async def _forge(args: argparse.Namespace) -> int:
    repo = await Repo.discover(Path(args.cwd))
    forge = await detect(repo.root, load_config(repo.main_root).forge)
    auth = await plan(forge)
    lines = [
        f"forge     {forge.kind} at {forge.web_url}" + (" (from [tool.adw.forge])" if forge.configured else ""),
        f"project   {forge.project} (remote {forge.remote}: {forge.remote_url})",
        f"api       {forge.api_url}",
        f"auth      {auth.method}" if auth.method else f"auth      none found (tried {', '.join(auth.tried)})",
    ]
    if not auth.method:
        lines.append(f"  hint: {auth.login}")
    emit(args, {"forge": forge, "auth": auth}, "\n".join(lines))
    return 0 if auth.method else 1


async def _pr(args: argparse.Namespace) -> int:
    engine = await open_engine(args.cwd)
    try:
        workflow = engine.get(args.id)
        provider = await connect(Path(workflow.repo), engine.config.forge)
    finally:
        engine.close()
    try:
        outcome = await pull_request_of(provider, workflow, args.base)
    finally:
        await provider.aclose()
    emit(args, outcome, outcome.message)
    return 0


async def pull_request_of(provider: Provider, workflow: Workflow, base: str | None = None) -> PrOutcome:
    return await open_pull_request(Path(workflow.repo), workflow, provider, base=base)


async def pull_requests(provider: Provider, workflows: list[Workflow]) -> tuple[list[dict[str, Any]], str, bool]:
    """`adw sdlc --pr`: one pull request per workflow after the run; a workflow that cannot have one says why
    and the others go on. Returns the results, their text and whether all were opened."""
    results: list[dict[str, Any]] = []
    lines = []
    for workflow in workflows:
        try:
            outcome = await pull_request_of(provider, workflow)
        except AdwError as exc:
            results.append({"workflow": workflow.id, "error": exc.to_dict()})
            lines.append(f"{workflow.name}: no pull request: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
            continue
        results.append(outcome.model_dump(mode="json"))
        lines.append(f"{workflow.name}: {outcome.message}")
    return results, "\n".join(lines), all("error" not in result for result in results)
