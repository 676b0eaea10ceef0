"""`adw pr`'s flow on a real repository whose `origin` pushes to a local bare repository and whose forge is the
local fake: push, a draft created then updated (never a second one), a body with the diffstat and the judged
results, the issue linked and commented once; and a remote branch with someone else's commits never overwritten."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adw.config import ForgeConfig
from adw.errors import AdwError, UnsafeOperationError
from adw.forge.client import connect_to
from adw.forge.http import ForgeError
from adw.forge.issues import save_issue_spec
from adw.forge.pr import open_pull_request
from adw.forge.providers import Issue, Provider
from adw.forge.push import push_branch
from adw.forge.remotes import forge_of
from adw.workflow.models import Attempt, Finding, Severity, Task, TaskState, Usage, Workflow
from tests.conftest import MakeRepo, run_git
from tests.forge.fakeforge import API_PATHS, Fake, serve


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serve("github", "octo/widget") as server:
        yield server


@pytest.fixture
def repo(make_repo: MakeRepo, tmp_path: Path) -> Path:
    """main pushed to a bare origin, and branch adw/x one commit ahead."""
    root = make_repo({"src/a.py": "x = 1\n"})
    bare = tmp_path / "origin.git"
    run_git(tmp_path, "init", "-q", "--bare", str(bare))
    run_git(root, "remote", "add", "origin", "https://github.com/octo/widget.git")
    run_git(root, "remote", "set-url", "--push", "origin", str(bare))
    run_git(root, "push", "-q", "origin", "main")
    run_git(root, "checkout", "-q", "-b", "adw/x")
    (root / "src" / "a.py").write_text("x = 2\ny = 3\n", encoding="utf-8")
    run_git(root, "commit", "-qam", "change a")
    run_git(root, "checkout", "-q", "main")
    return root


@pytest.fixture
async def provider(fake: Fake) -> AsyncIterator[Provider]:
    forge = forge_of(
        "https://github.com/octo/widget.git",
        ForgeConfig(host="github.com", kind="github", api_url=API_PATHS["github"](fake.base_url)),
    )
    client = await connect_to(forge, {"PATH": "", "GH_TOKEN": "t"})
    yield client
    await client.aclose()


def workflow(root: Path, spec: str | None = None) -> Workflow:
    base = run_git(root, "rev-parse", "main").strip()
    now = time.time()
    failing = Finding(path="tests/test_a.py", line=4, severity=Severity.ERROR, message="assert 2 == 1", source="pytest")
    old = Finding(path="tests/test_b.py", line=1, message="already broken", source="pytest")
    return Workflow(
        id="x-1a2b3c",
        name="x",
        kind="sdlc",
        repo=str(root),
        cwd=str(root),
        spec=spec,
        worktree="x",
        base_commit=base,
        state=TaskState.FAILED,
        reason="test failed",
        started_at=now - 95,
        finished_at=now,
        tasks=[
            Task(
                id="worktree",
                phase="worktree",
                agent="worktree",
                kind="step",
                state=TaskState.SUCCEEDED,
                outputs={"branch": "adw/x", "base": "main", "base_commit": base},
            ),
            Task(
                id="build",
                phase="build",
                agent="claude",
                state=TaskState.SUCCEEDED,
                summary="wrote 1 file",
                attempts=[Attempt(number=1, state=TaskState.SUCCEEDED, usage=Usage(cost_usd=0.125))],
            ),
            Task(
                id="test",
                phase="test",
                agent="pytest",
                state=TaskState.FAILED,
                findings=[failing],
                outputs={"baseline": {"new": 1, "pre_existing": [old.model_dump(mode="json")], "fixed": []}},
            ),
            Task(
                id="review",
                phase="review",
                agent="ruff",
                state=TaskState.SUCCEEDED,
                summary="0 new",
                outputs={"baseline": {"new": 0, "pre_existing": [], "fixed": []}},
            ),
        ],
    )


def bare_tip(root: Path, branch: str = "adw/x") -> str:
    bare = run_git(root, "remote", "get-url", "--push", "origin").strip()
    return run_git(root, "--git-dir", bare, "rev-parse", f"refs/heads/{branch}").strip()


async def test_pushes_and_opens_a_draft_whose_body_sums_up_the_phases(
    repo: Path, fake: Fake, provider: Provider
) -> None:
    outcome = await open_pull_request(repo, workflow(repo), provider)
    assert outcome.push.mode == "new" and bare_tip(repo) == run_git(repo, "rev-parse", "adw/x").strip()
    pr = outcome.pull_request
    assert pr.created and pr.draft and fake.pulls[0]["base"] == "main" and fake.pulls[0]["head"] == "adw/x"
    body = fake.pulls[0]["body"]
    assert "src/a.py | 3 ++-" in body  # the diffstat against the base commit
    assert "| test | pytest | failed | 1 | 1 | 0 |" in body  # new / pre-existing / fixed
    assert "`tests/test_a.py:4` assert 2 == 1 (test)" in body
    assert "$0.1250" in body and "in 95s" in body and "**failed**: test failed" in body
    assert "Closes #" not in body  # no issue behind this workflow
    assert outcome.issue is None and outcome.comment is None


async def test_a_second_run_updates_the_same_draft(repo: Path, fake: Fake, provider: Provider) -> None:
    first = await open_pull_request(repo, workflow(repo), provider)
    second = await open_pull_request(repo, workflow(repo), provider)
    assert second.push.mode == "up-to-date" and not second.pull_request.created
    assert second.pull_request.number == first.pull_request.number and len(fake.pulls) == 1
    assert fake.calls("POST") == ["POST /repos/octo/widget/pulls"]
    assert "PATCH /repos/octo/widget/pulls/1" in fake.calls("PATCH")


async def test_links_and_comments_the_issue_once(repo: Path, fake: Fake, provider: Provider) -> None:
    issue = Issue(number=12, title="Crash on empty input", body="b", labels=["bug"], url="https://x/12")
    fake.add_issue(12, issue.title, "b", ["bug"], [("ana", "please fix")])
    common = Path(run_git(repo, "rev-parse", "--git-common-dir").strip())
    spec = save_issue_spec(repo / common if not common.is_absolute() else common, issue, provider.forge, "12-crash")
    await open_pull_request(repo, workflow(repo, str(spec)), provider)
    await open_pull_request(repo, workflow(repo, str(spec)), provider)
    assert "Closes #12" in fake.pulls[0]["body"] and fake.pulls[0]["title"] == "Crash on empty input"
    comments = fake.comments[12]
    assert [c["author"] for c in comments] == ["ana", "adw-user"]  # edited on the rerun, not repeated
    assert fake.pulls and "/pull/1" in comments[1]["body"] and "test: 1 new" in comments[1]["body"]


async def test_someone_elses_commits_on_the_remote_branch_are_never_overwritten(
    repo: Path, fake: Fake, provider: Provider, tmp_path: Path
) -> None:
    await open_pull_request(repo, workflow(repo), provider)
    bare = run_git(repo, "remote", "get-url", "--push", "origin").strip()
    other = tmp_path / "other"
    run_git(tmp_path, "clone", "-q", "-b", "adw/x", bare, str(other))
    (other / "theirs.txt").write_text("mine\n", encoding="utf-8")
    run_git(other, "add", "-A")
    run_git(other, "commit", "-qm", "a reviewer's commit")
    run_git(other, "push", "-q", "origin", "adw/x")
    theirs = bare_tip(repo)
    run_git(repo, "checkout", "-q", "adw/x")  # ADW rewrites its branch (an undo, say)
    run_git(repo, "commit", "-q", "--amend", "-m", "change a, amended")
    run_git(repo, "checkout", "-q", "main")
    with pytest.raises(UnsafeOperationError) as caught:
        await open_pull_request(repo, workflow(repo), provider)
    assert theirs[:12] in caught.value.message and "git pull origin adw/x" in caught.value.hint
    assert bare_tip(repo) == theirs
    assert fake.calls("PATCH") == []  # refused before touching the pull request


async def test_a_branch_rewritten_by_adw_replaces_what_adw_pushed_with_a_lease(repo: Path) -> None:
    first = await push_branch(repo, "origin", "adw/x")
    run_git(repo, "checkout", "-q", "adw/x")
    run_git(repo, "commit", "-q", "--amend", "-m", "rewritten by an undo and a new build")
    run_git(repo, "checkout", "-q", "main")
    second = await push_branch(repo, "origin", "adw/x")
    assert (first.mode, second.mode, second.previous) == ("new", "lease", first.commit)
    assert bare_tip(repo) == run_git(repo, "rev-parse", "adw/x").strip()


async def test_a_push_killed_before_it_was_recorded_still_counts_as_adws(repo: Path) -> None:
    """The intent ref is written before the push: kill -9 between the push and the `done` ref loses nothing."""
    local = run_git(repo, "rev-parse", "adw/x").strip()
    run_git(repo, "update-ref", "refs/adw/pushed/origin/adw/x/intent", local)
    run_git(repo, "push", "-q", "origin", "adw/x")  # the push happened; the process died before `done`
    run_git(repo, "checkout", "-q", "adw/x")
    run_git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    run_git(repo, "checkout", "-q", "main")
    assert (await push_branch(repo, "origin", "adw/x")).mode == "lease"


async def test_a_fast_forward_is_a_plain_push(repo: Path) -> None:
    await push_branch(repo, "origin", "adw/x")
    run_git(repo, "checkout", "-q", "adw/x")
    (repo / "b.txt").write_text("b\n", encoding="utf-8")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "more")
    run_git(repo, "checkout", "-q", "main")
    assert (await push_branch(repo, "origin", "adw/x")).mode == "fast-forward"


async def test_refuses_running_or_branchless_or_empty_workflows(repo: Path, provider: Provider) -> None:
    running = workflow(repo).model_copy(update={"state": TaskState.RUNNING})
    with pytest.raises(AdwError, match="still running"):
        await open_pull_request(repo, running, provider)
    empty = workflow(repo)
    run_git(repo, "branch", "-f", "adw/x", "main")
    with pytest.raises(AdwError, match="no commit beyond its base"):
        await open_pull_request(repo, empty, provider)
    detached = workflow(repo)
    detached.tasks[0].outputs["base"] = "HEAD"
    with pytest.raises(AdwError) as caught:
        await open_pull_request(repo, detached, provider)
    assert "--base main" in caught.value.hint


async def test_a_failing_remote_is_one_error_without_the_urls_password(repo: Path) -> None:
    run_git(repo, "remote", "set-url", "--push", "origin", "https://me:SECRET@127.0.0.1:9/octo/widget.git")
    with pytest.raises(ForgeError) as caught:
        await push_branch(repo, "origin", "adw/x")
    assert "cannot read origin" in caught.value.message and "127.0.0.1:9" in caught.value.message
    assert "SECRET" not in str(caught.value)
