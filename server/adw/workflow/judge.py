"""Judge the change, not the repository: test and review run once more on a clean checkout of the workflow's
base commit, and their findings are split into new ones, pre-existing ones (information) and fixed ones.

The base run is cached in `<git-common-dir>/adw/baseline/` by the base tree and the phase's agent and settings,
so N workflows on one base run it once; a file lock makes concurrent workflows wait for the one running it.
The checkout is a temporary folder filled from the base tree through a private index: the user's worktrees,
index and branches are never touched, and the folder is removed afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from adw.errors import AdwError
from adw.git.locks import repo_lock
from adw.git.refs import BASELINE_DIR
from adw.git.runner import git
from adw.workflow.models import AgentResult, Finding, Severity, Task

JUDGED_PHASES = ("test", "review")
# Checks whose run on the base is cheap and comparable; an LLM reviewer is not run twice unless configured.
JUDGED_AGENTS = ("pytest", "ruff", "command")
CHANGED_FILES_ONLY = ("review",)  # lint speaks about files; a test anywhere can fail because of the change


class BaseRun(BaseModel):
    """What the phase's agent found on the base commit."""

    status: Literal["succeeded", "failed"]
    summary: str
    findings: list[Finding]


def judged(task: Task) -> bool:
    if task.config is not None and task.config.baseline is not None:
        return task.config.baseline
    return task.phase in JUDGED_PHASES and task.agent in JUDGED_AGENTS


async def base_run(
    adw_dir: Path, repo_root: Path, base_commit: str, command: Any, run: Callable[[Path], Awaitable[AgentResult | None]]
) -> tuple[BaseRun | None, bool]:
    """The cached run of `command` on `base_commit`, else `run(checkout)` on a fresh checkout of it (None when
    it did not finish: a cancel or a timeout is not a result). Returns the run and whether it came from the
    cache."""
    tree = (await git("rev-parse", f"{base_commit}^{{tree}}", cwd=repo_root)).stdout.strip()
    digest = hashlib.sha256(json.dumps([tree, command], sort_keys=True).encode()).hexdigest()[:32]
    folder = adw_dir / BASELINE_DIR
    cache = folder / f"{digest}.json"
    async with repo_lock(folder / f"{digest}.lock"):
        with contextlib.suppress(OSError, ValidationError):
            kept = BaseRun.model_validate_json(cache.read_bytes())
            if not _never_ran(kept):  # an earlier ADW kept such runs: run it again
                return kept, True
        with tempfile.TemporaryDirectory(prefix="adw-base-") as scratch:
            checkout = Path(scratch) / repo_root.name
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            await git("read-tree", tree, cwd=repo_root, env=env)
            await git("checkout-index", "-a", f"--prefix={checkout}/", cwd=repo_root, env=env)
            result = await run(checkout)
        if result is None:
            return None, False
        base = BaseRun(status=result.status, summary=result.summary, findings=result.findings)
        if _never_ran(base):  # nothing to compare with, nor to keep
            raise AdwError(f"{command[0]} did not run on it: {result.reason or 'no reason given'}")
        cache.write_text(base.model_dump_json(), encoding="utf-8")
        return base, False


def _never_ran(run: BaseRun) -> bool:
    """A failure with neither a finding nor a summary: the agent crashed or could not start (a check that ran
    and failed, even one judged by its exit code alone, says what it ran)."""
    return run.status == "failed" and not run.findings and not run.summary


async def changed_files(worktree: Path, base_commit: str) -> set[str]:
    """Files of the worktree that differ from the base commit, untracked ones included."""
    tracked = await git("diff", "--name-only", "-z", "--no-renames", base_commit, "--", cwd=worktree)
    untracked = await git("ls-files", "-z", "-o", "--exclude-standard", cwd=worktree)
    return {p for p in (tracked.stdout + "\0" + untracked.stdout).split("\0") if p}


def _identity(finding: Finding) -> Hashable:
    if finding.key is not None:
        return finding.source, finding.key
    return finding.source, finding.path, finding.code, finding.message  # a lint message names its symbol


def compare(
    result: AgentResult, base: BaseRun, changed: set[str] | None, block_on: Literal["new", "any"]
) -> AgentResult:
    """`result` with only its new findings (in `changed` files, when given), the pre-existing and fixed ones
    in `outputs.baseline`, and a failure lifted when every failing finding already failed on the base."""
    before = Counter(_identity(f) for f in base.findings)
    new, old = [], []
    for finding in result.findings:
        key = _identity(finding)
        if before[key]:
            before[key] -= 1
            old.append(finding)
        else:
            new.append(finding)
    now = Counter(_identity(f) for f in result.findings)
    fixed = []
    for finding in base.findings:
        key = _identity(finding)
        if now[key]:
            now[key] -= 1
        else:
            fixed.append(finding)
    shown = [f for f in new if changed is None or f.path in changed]
    hidden = len(new) - len(shown)
    verdict = f"{len(shown)} new, {len(old)} pre-existing"
    verdict += f" ({hidden} new in unchanged files not shown)" if hidden else ""
    verdict += f", fixed {len(fixed)}" if fixed else ""
    status, reason = result.status, result.reason
    only_old = result.findings and not any(f.severity is Severity.ERROR for f in new)
    if status == "failed" and block_on == "new" and base.status == "failed" and only_old:
        status, reason = "succeeded", ""
    elif status == "failed":
        reason = f"{reason} ({verdict})"
    outputs = {
        **result.outputs,
        "baseline": {
            "new": len(shown),
            "pre_existing": [f.model_dump(mode="json") for f in old],
            "fixed": [f.model_dump(mode="json") for f in fixed],
        },
    }
    summary = f"{result.summary}; {verdict}" if result.summary else verdict
    return result.model_copy(
        update={"status": status, "reason": reason, "summary": summary, "findings": shown, "outputs": outputs}
    )
