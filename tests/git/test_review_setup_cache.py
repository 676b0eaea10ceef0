"""Adversarial review (session 7): a long-lived checkpoint store notices every change to git's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from adw.git.checkpoints import Checkpoints
from tests.conftest import run_git


@pytest.mark.xfail(strict=True, reason="Checkpoints._plain_git caches by the stat of the main config files only: "
                   "a setting in an included file (include.path, includeIf) changed later is never seen by a "
                   "resident ADW or language server, which keeps writing loose objects with its own permissions")
async def test_a_setting_changed_in_an_included_config_file_is_seen(repo: Path, tmp_path: Path) -> None:
    included = tmp_path / "shared.gitconfig"
    included.write_text("")
    run_git(repo, "config", "include.path", str(included))
    store = await Checkpoints.open(repo)
    assert (await store._plain_git()).objects is not None
    run_git(repo, "config", "-f", str(included), "core.sharedRepository", "group")
    assert (await store._plain_git()).objects is None  # git's rules for a shared repository: mktree writes trees
