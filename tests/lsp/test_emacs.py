"""The user scenario in a third editor: Emacs (Debian's emacs-nox 28) with eglot (elpa-eglot 1.9), in batch mode.

emacs_scenario.el loads docs/editors/adw.el as a user does and runs the spec's lens from its heading, sees the
agents' progress lines and the workflow finish, scouts into a grep buffer in the ranking, and runs "Undo this file"
from the changed line (no question asked), the buffer following the disk through auto-revert-mode. .ci/run
installs emacs-nox and elpa-eglot; the test is skipped, saying so, only where they are missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adw.sdlc.demo import create_demo_repo

pytestmark = pytest.mark.real  # .ci/run installs the program and runs these in a step of their own

SCRIPT = Path(__file__).with_name("emacs_scenario.el")
SETUP = Path(__file__).parents[2] / "docs/editors/adw.el"  # what docs/EDITORS.md tells users to load


def _emacs_with_eglot() -> str:
    emacs = shutil.which("emacs")
    if emacs is None:
        pytest.skip("Emacs is not installed: `apt-get install emacs-nox elpa-eglot` (.ci/run does)")
    probe = subprocess.run([emacs, "--batch", "--eval", "(require 'eglot)"], capture_output=True, text=True,
                           timeout=120)
    if probe.returncode != 0:
        pytest.skip("eglot is not installed: `apt-get install elpa-eglot` (.ci/run does)")
    return emacs


@pytest.mark.slow
def test_emacs_eglot_user_scenario(tmp_path: Path) -> None:
    emacs = _emacs_with_eglot()
    root = tmp_path / "demo"
    asyncio.run(create_demo_repo(root))  # the repository of `adw demo`, without running its workflows
    result_file = tmp_path / "result.json"
    env = {
        **os.environ,
        "ADW_PY": sys.executable,
        "ADW_ROOT": str(root),
        "ADW_RESULT": str(result_file),
        "ADW_SETUP": str(SETUP),
        "HOME": str(tmp_path / "home"),  # no ~/.emacs.d writes; -q: no user init (Debian's site files load eglot)
    }
    try:
        done = subprocess.run([emacs, "--batch", "-q", "-l", str(SCRIPT)], cwd=root, env=env, capture_output=True,
                              text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"emacs hung; partial output: {exc.stdout!r} {exc.stderr!r}") from None
    assert result_file.is_file(), f"emacs wrote no result (exit {done.returncode}): {done.stderr[-3000:]}"
    result = json.loads(result_file.read_text())
    assert result["ok"] is True, f"{result.get('error')}\nsteps: {result['steps']}\nstderr: {done.stderr[-3000:]}"
    assert done.returncode == 0

    assert result["server"] == "adw"
    assert result["spec_lenses"] == ["Start Parallel SDLC", "Scout"]
    assert result["spec_lens_lines"] == [result["heading_line"]] * 2
    assert result["state"] == "succeeded"
    # eglot has no $/progress: the agents' progress comes as log lines, which adw.el echoes.
    assert any(line.startswith("ADW ") and line.endswith(": started") for line in result["logs"]), result["logs"]
    # The grep buffer lists the scout's `top` locations in the server's ranking.
    assert 0 < len(result["ranking"]) <= 3
    assert [line.split(": #")[0] for line in result["scout_lines"]] == result["ranking"]
    assert [line.split(": #")[1].split()[0] for line in result["scout_lines"]] == [
        str(rank) for rank in range(1, len(result["ranking"]) + 1)]

    worktree = Path(result["worktree"])
    lines = result["original"].rstrip("\n").split("\n")
    assert result["changed_line"] == len(lines) - 1
    assert result["undo_file_line"] == result["changed_line"] and result["undo_file_asked"] == 0
    assert any(title.startswith("Undo to checkpoint") for title in result["file_lenses"])
    assert result["undo_path"] == "src/calc/multiply.py"
    assert result["on_disk"] == result["original"] == result["buffer"]
    assert (worktree / "src/calc/multiply.py").read_text() == result["original"]
