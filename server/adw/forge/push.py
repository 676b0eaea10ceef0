"""Push a workflow's branch without ever overwriting what someone else pushed.

A branch the remote does not have, or one the local branch contains, is pushed plainly (git itself refuses a
non-fast-forward). A remote tip that is not in the local branch is overwritten only when ADW pushed that very
commit (an undo rewound the branch since), and then with `--force-with-lease=<branch>:<that commit>`, so a push
by anyone in between still wins. Anything else is refused, naming the commit to fetch.

Which commits ADW pushed is kept in two refs per remote branch: `…/intent` is written before the push and
`…/done` after it, so a push killed at any point still counts as ADW's on the next run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from adw.errors import GitError, UnsafeOperationError
from adw.forge.http import ForgeError
from adw.git.runner import git

PUSHED_REFS = "refs/adw/pushed"
_PUSH_TIMEOUT = 300.0
_SAFE_REF = re.compile(r"[^A-Za-z0-9._/-]")

PushMode = Literal["new", "fast-forward", "up-to-date", "lease"]


class PushResult(BaseModel):
    remote: str
    branch: str
    commit: str
    previous: str | None  # the remote's tip before the push
    mode: PushMode


def _ours(remote: str, branch: str, which: Literal["intent", "done"]) -> str:
    return f"{PUSHED_REFS}/{_SAFE_REF.sub('_', remote)}/{branch}/{which}"


async def _rev(root: Path, ref: str) -> str | None:
    found = await git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", cwd=root, ok_codes=(0, 1, 128))
    return found.stdout.strip() if found.returncode == 0 else None


async def remote_tip(root: Path, remote: str, branch: str) -> str | None:
    """The branch's tip where `git push REMOTE` goes (its push URL, when it has one)."""
    try:
        url = (await git("remote", "get-url", "--push", remote, cwd=root)).stdout.strip()
        found = await git("ls-remote", "--heads", url, f"refs/heads/{branch}", cwd=root, timeout=_PUSH_TIMEOUT)
    except GitError as exc:
        raise ForgeError(f"cannot read {remote}: {exc.stderr}", "check the remote's URL and your git login") from None
    for line in found.lines:
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


async def push_branch(root: Path, remote: str, branch: str) -> PushResult:
    local = await _rev(root, f"refs/heads/{branch}")
    if local is None:
        raise ForgeError(
            f"there is no branch {branch} to push", "run the workflow first (`adw sdlc`)",
            editor_hint="run the workflow first: ADW: Start Parallel SDLC",
        )
    previous = await remote_tip(root, remote, branch)
    ours = {await _rev(root, _ours(remote, branch, "intent")), await _rev(root, _ours(remote, branch, "done"))}
    refspec = f"refs/heads/{branch}:refs/heads/{branch}"
    mode: PushMode
    if previous == local:
        mode = "up-to-date"
    elif previous is None:
        mode = "new"
    elif await _contains(root, local, previous):
        mode = "fast-forward"
    elif previous in ours:
        mode = "lease"
    else:
        raise UnsafeOperationError(
            f"{remote}/{branch} has commits ADW did not push (its tip is {previous[:12]}); pushing would lose them",
            f"bring them into the branch first (`git pull {remote} {branch}` in its worktree), then push again",
        )
    if mode != "up-to-date":
        await git("update-ref", _ours(remote, branch, "intent"), local, cwd=root)
        argv = ["push", "--porcelain", remote, refspec]
        if mode == "lease":
            argv.insert(1, f"--force-with-lease=refs/heads/{branch}:{previous}")
        try:
            await git(*argv, cwd=root, timeout=_PUSH_TIMEOUT)
        except GitError as exc:
            raise ForgeError(
                f"git push to {remote} failed: {exc.stderr or exc.stdout.strip()}",
                "if someone pushed to the branch meanwhile, bring their commits in and push again; "
                "otherwise check your git login for the remote (`git push` by hand says more)",
            ) from None
    await git("update-ref", _ours(remote, branch, "done"), local, cwd=root)
    return PushResult(remote=remote, branch=branch, commit=local, previous=previous, mode=mode)


async def _contains(root: Path, local: str, other: str) -> bool:
    """Whether `other` is in the history of `local` (False when git does not even have the commit)."""
    found = await git("merge-base", "--is-ancestor", other, local, cwd=root, ok_codes=(0, 1, 128))
    return found.returncode == 0
