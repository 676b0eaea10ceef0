"""The Worktrees view's pull request and CI state (`ReviewWatch`): a branch asked about at most once per interval,
a refresh asking now, and no login looked for again (a `gh` spawn) only after the interval or on a refresh."""

from __future__ import annotations

import ast
from pathlib import Path

from adw.config import ForgeConfig
from adw.forge.status import ReviewWatch
from tests.conftest import MakeRepo, run_git
from tests.forge.fakeforge import API_PATHS, serve
from tests.forge.test_auth import calls, stub

FORGE = Path(__file__).parents[2] / "server" / "adw" / "forge"


async def test_branches_are_asked_about_once_per_interval(make_repo: MakeRepo) -> None:
    root = make_repo()
    run_git(root, "remote", "add", "origin", "git@gitlab.com:group/app.git")
    with serve("gitlab", "group/app") as fake:
        config = ForgeConfig(host="gitlab.com", kind="gitlab", api_url=API_PATHS["gitlab"](fake.base_url))
        watch = ReviewWatch(interval=3600, env={"PATH": "", "GITLAB_TOKEN": "t"})
        try:
            first = await watch.status(root, config, ["adw/a"])
            assert first.available and first.branches[0].pull_request is None
            fake.pulls.append(
                {
                    "number": 1,
                    "title": "Draft: a",
                    "body": "",
                    "state": "opened",
                    "head": "adw/a",
                    "base": "main",
                    "sha": "3" * 40,
                }
            )
            fake.statuses["3" * 40] = ["failed"]
            asked = len(fake.requests)
            assert (await watch.status(root, config, ["adw/a"])).branches[0].pull_request is None  # cached
            assert len(fake.requests) == asked
            fresh = await watch.status(root, config, ["adw/a"], refresh=True)
            review = fresh.branches[0]
            assert review.pull_request is not None and review.pull_request.draft
            assert review.checks is not None and review.checks.state == "failure"
        finally:
            await watch.aclose()


async def test_no_login_is_an_answer_and_is_not_looked_for_on_every_poll(make_repo: MakeRepo, tmp_path: Path) -> None:
    root = make_repo()
    run_git(root, "remote", "add", "origin", "git@github.com:octo/widget.git")
    record = stub(tmp_path / "bin", "gh", "", status=1)
    watch = ReviewWatch(interval=3600, env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    first = await watch.status(root, ForgeConfig(), ["adw/a"])
    assert not first.available and "gh auth login --hostname github.com" in first.reason
    assert (await watch.status(root, ForgeConfig(), ["adw/a"])).reason == first.reason
    assert len(calls(record)) == 1
    await watch.status(root, ForgeConfig(), ["adw/a"], refresh=True)
    assert len(calls(record)) == 2
    run_git(root, "remote", "remove", "origin")
    gone = await watch.status(root, ForgeConfig(), ["adw/a"], refresh=True)
    assert not gone.available and "no remote" in gone.reason


def test_the_forge_package_never_imports_an_adapter() -> None:
    for module in FORGE.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names]
        assert not [n for n in names if n.startswith(("adw.lsp", "adw.cli"))], module.name
