"""The user scenario in a second real editor: Neovim (Debian's package) headless with its built-in LSP client.

It opens a spec of the demo repository, sees the lenses, starts the SDLC with the built-in agents from the
lens, sees it finish, edits and saves a file of the new worktree and runs its undo lens (nvim_scenario.lua).
Neovim is installed with apt-get where it is missing; the test is skipped, saying why, only where it cannot be.
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

SCRIPT = Path(__file__).with_name("nvim_scenario.lua")


def _install_neovim() -> str:
    """Path of nvim, installing Debian's package when it is missing (skips with the reason when it can't)."""
    found = shutil.which("nvim")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("Neovim is not installed and apt-get is unavailable: install neovim to run this test")
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
            pytest.skip("Neovim is not installed and apt-get needs root: `sudo apt-get install neovim`")
        sudo = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, apt, "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "neovim"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run([*sudo, apt, "update", "-q"], capture_output=True, env=env, timeout=600)
        done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    found = shutil.which("nvim")
    if done.returncode != 0 or found is None:
        pytest.skip(f"could not install Neovim with apt-get: {(done.stderr or done.stdout).strip()[-500:]}")
    return found


@pytest.mark.slow
def test_neovim_user_scenario(tmp_path: Path) -> None:
    nvim = _install_neovim()
    root = tmp_path / "demo"
    asyncio.run(create_demo_repo(root))  # the repository of `adw demo`, without running its workflows
    result_file = tmp_path / "result.json"
    state = tmp_path / "nvim-state"
    env = {
        **os.environ,
        "ADW_PY": sys.executable,
        "ADW_ROOT": str(root),
        "ADW_RESULT": str(result_file),
        # nvim's own logs (lsp.log) go here, not to ~/.cache
        "XDG_CACHE_HOME": str(state / "cache"),
        "XDG_STATE_HOME": str(state / "state"),
        "XDG_DATA_HOME": str(state / "data"),
        "XDG_CONFIG_HOME": str(state / "config"),
    }
    argv = [nvim, "--headless", "-n", "-i", "NONE", "-u", str(SCRIPT), str(root / "specs/multiply.md")]
    try:
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"nvim hung; partial output: {exc.stdout!r} {exc.stderr!r}") from None
    assert result_file.is_file(), f"nvim wrote no result (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(result_file.read_text())
    assert result["ok"], f"{result.get('error')}\nsteps: {result['steps']}\nstderr: {done.stderr[-2000:]}"
    assert done.returncode == 0

    assert result["spec_lenses"] == ["Start Parallel SDLC", "Scout"]
    assert result["state"] == "succeeded"
    worktree = Path(result["worktree"])
    assert worktree.name == "multiply" and worktree.is_dir()
    original = (root / "specs/multiply.md").read_text().split("```python path=src/calc/multiply.py\n")[1]
    assert result["original"] == original.split("```")[0].rstrip("\n")  # the build wrote the spec's code
    assert result["edited"] == "def multiply(a, b):\n    return 0"
    assert any(title.startswith("Undo to checkpoint") for title in result["file_lenses"])
    assert "Undo this file" in result["file_lenses"]
    # The undo lens restored the file on disk, and the reloaded buffer shows it.
    assert result["on_disk"] == result["original"] == result["buffer"]
    assert (worktree / "src/calc/multiply.py").read_text().rstrip("\n") == result["original"]
    assert result["undo_restored"] is not None
