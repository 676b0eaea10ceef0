"""kill -9 of `adw sdlc` at every one of its git calls, and of the `adw resume` that follows at every one of its
own: after each kill fsck is clean, the user's files and branch are untouched, and the next `adw resume` (or
`adw sdlc` again, when the kill came before the workflow was stored) finishes with exactly one commit holding
the same files as an uninterrupted run. Deselected by default (tens of minutes); CI runs it with
`pytest -m soak tests/soak`. tests/sdlc/test_sdlc_resume_after_kill.py keeps a sample of it in the default suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MakeRepo
from tests.sdlc.test_sdlc_resume_after_kill import SdlcSweep, after_worktree_add


@pytest.mark.soak
def test_sdlc_killed_at_every_git_call_resumes_to_the_same_commit(make_repo: MakeRepo, tmp_path: Path) -> None:
    sweep = SdlcSweep.make(make_repo, tmp_path)
    for kill_at in range(1, len(sweep.calls) + 2):  # one past the last: a run not killed shows its own count
        sweep.sdlc_then_resume(kill_at)
    print(f"sdlc: {sweep.kills} kills of {len(sweep.calls)} git calls")  # the figure docs/RELIABILITY.md records
    assert sweep.uncut and sweep.kills >= min(sweep.uncut)  # every call of the shortest whole run was a kill


@pytest.mark.soak
def test_resume_killed_at_every_git_call_then_resumed_again(make_repo: MakeRepo, tmp_path: Path) -> None:
    sweep = SdlcSweep.make(make_repo, tmp_path)
    sdlc_kill = after_worktree_add(sweep.calls)
    calls = sweep.resume_calls(sdlc_kill)
    for kill_at in range(1, len(calls) + 2):
        sweep.resume_killed(sdlc_kill, kill_at)
    print(f"resume: {sweep.resume_kills} kills of {len(calls)} git calls")
    assert sweep.resume_uncut and sweep.resume_kills >= min(sweep.resume_uncut)
