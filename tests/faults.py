"""Fault injection for the suite: a `git` first on PATH that counts every call ADW makes, kills ADW's whole
process group (as `kill -9` would) at the k-th call, or slows chosen git subcommands to widen race windows.

Run the command once without a kill to learn how many git calls it makes (`FaultRun.calls`), then once per
call boundary with `kill_at=k`; after each, assert that nothing was lost and the next command succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_WRAPPER = """\
import fcntl, json, os, signal, sys, time

state = os.environ["ADW_FAULT_DIR"]
argv = sys.argv[1:]
with open(os.path.join(state, "calls"), "a+", encoding="utf-8") as log:
    fcntl.flock(log, fcntl.LOCK_EX)  # ADW runs git calls concurrently: number them one at a time
    log.seek(0)
    number = sum(1 for _ in log) + 1
    log.write(json.dumps(argv) + "\\n")
    log.flush()
if os.environ.get("ADW_FAULT_KILL_AT") == str(number):
    os.killpg(os.getpgrp(), signal.SIGKILL)
subcommand = next((a for i, a in enumerate(argv) if not a.startswith("-") and argv[i - 1] not in ("-c", "-C")), "")
for rule in filter(None, os.environ.get("ADW_FAULT_SLOW", "").split(",")):
    name, seconds = rule.split("=")
    if name == subcommand:
        time.sleep(float(seconds))
os.execv(os.environ["ADW_FAULT_REAL_GIT"], ["git", *argv])
"""


@dataclass(frozen=True)
class FaultRun:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


class FaultyGit:
    """A git wrapper installed in `folder`; `run` starts `adw ARGS` in its own process group with it on PATH."""

    def __init__(self, folder: Path) -> None:
        real_git = shutil.which("git")
        assert real_git, "git is not installed"
        self.real_git = real_git
        self.bin = folder / "bin"
        self.state = folder / "state"
        self.bin.mkdir(parents=True)
        self.state.mkdir()
        wrapper = self.bin / "git"
        wrapper.write_text(f"#!{sys.executable} -I\n{_WRAPPER}", encoding="utf-8")
        wrapper.chmod(0o755)

    def env(self, kill_at: int | None = None, slow: Mapping[str, float] | None = None) -> dict[str, str]:
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "ADW_FAULT_DIR": str(self.state),
            "ADW_FAULT_REAL_GIT": self.real_git,
            "ADW_FAULT_SLOW": ",".join(f"{name}={seconds}" for name, seconds in (slow or {}).items()),
        }
        if kill_at is not None:
            env["ADW_FAULT_KILL_AT"] = str(kill_at)
        return env

    def run(
        self,
        cwd: Path,
        *args: str,
        kill_at: int | None = None,
        slow: Mapping[str, float] | None = None,
        timeout: float = 120,
    ) -> FaultRun:
        """`python -m adw ARGS` in `cwd`, killed with its whole process group at the `kill_at`-th git call."""
        (self.state / "calls").write_text("", encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "adw", *args],
            cwd=cwd,
            env=self.env(kill_at, slow),
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # its own process group: the kill takes ADW and its children, not pytest
        )
        calls = [json.loads(line) for line in (self.state / "calls").read_text(encoding="utf-8").splitlines()]
        return FaultRun(done.returncode, done.stdout, done.stderr, calls)
