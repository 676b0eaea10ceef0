"""The import diet of the everyday commands (issue #14 §1): a fresh `adw` process answering `worktree list`,
`status` or `checkpoints` loads none of the layers only `adw sdlc` needs (agents, SDLC steps, scouts, the forge
and its HTTP client). Checked by what is in `sys.modules` after the command, not by timing it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Runs the CLI's entry point in a fresh interpreter, then reports its exit code and every module it loaded.
_PROBE = """
import contextlib, io, json, sys
from adw.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "stdout": out.getvalue(), "modules": sorted(sys.modules)}))
"""

# What `adw sdlc` needs and these commands do not: the forge's HTTP client, the agent protocol, a table library
# (ADW no longer depends on one), and ADW's layers above the workflow engine.
_HEAVY = ("httpx", "acp", "rich", "adw.agents", "adw.sdlc", "adw.scouts", "adw.forge", "adw.cli.workflow")


def _loaded(repo: Path, *args: str) -> tuple[Any, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "-C", str(repo), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["code"] == 0, (report["stdout"], done.stderr)
    return json.loads(report["stdout"]), set(report["modules"])


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in _HEAVY))


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        (("worktree", "list", "--json"), lambda result, repo: [w["path"] for w in result] == [str(repo)]),
        (("status", "--json"), lambda result, repo: result == {"workflows": []}),
        (("checkpoints", "--json"), lambda result, repo: result == []),
    ],
    ids=["worktree list", "status", "checkpoints"],
)
def test_everyday_commands_load_no_agent_forge_or_scout_code(
    repo: Path, command: tuple[str, ...], answer: Callable[[Any, Path], bool]
) -> None:
    result, modules = _loaded(repo, *command)
    assert answer(result, repo), result
    assert _heavy(modules) == []


def test_a_command_handed_to_the_resident_adw_imports_no_parser_paths_or_hashes(repo: Path, runtime: Path) -> None:
    """The fast path (adw.cli.forward) pays for the standard library's lightest modules only: no argparse, pathlib
    or hashlib (~9 ms of a ~50 ms command), and none of ADW beyond the client."""
    started = subprocess.run([sys.executable, "-m", "adw", "-C", str(repo), "daemon", "start", "--idle", "1"],
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    try:
        result, modules = _loaded(repo, "checkpoints", "--json")
        assert result == []
        assert {"argparse", "pathlib", "hashlib"} & modules == set()
        assert sorted(m for m in modules if m.startswith("adw")) == ["adw", "adw.cli", "adw.cli.forward"]
    finally:
        subprocess.run([sys.executable, "-m", "adw", "-C", str(repo), "daemon", "stop"], capture_output=True,
                       timeout=60)
