"""Fault injection for the suite: a `git` first on PATH that counts every call ADW makes, kills ADW's whole
process group (as `kill -9` would) at the k-th call, or slows chosen git subcommands to widen race windows.

Run the command once without a kill to learn how many git calls it makes (`FaultRun.calls`), then once per
call boundary with `kill_at=k`; after each, assert that nothing was lost and the next command succeeds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# bash, not Python: the wrapper runs before every git call, and a sweep makes thousands of them. Each call is
# logged as its argument count and arguments, NUL-terminated (arguments may hold newlines, or be empty).
_WRAPPER = """\
#!/bin/bash
state=$ADW_FAULT_DIR
exec 9>>"$state/calls"
flock 9  # ADW runs git calls concurrently: number them one at a time
read -r number < "$state/count"
number=$((number + 1))
echo "$number" > "$state/count"
printf '%s\\0' "$#" "$@" >&9
exec 9>&-
if [[ ${ADW_FAULT_KILL_AT-} == "$number" ]]; then
    kill -KILL 0  # the whole process group, as kill -9 of the job would
fi
if [[ -n ${ADW_FAULT_SLOW-} ]]; then
    subcommand="" previous=""
    for arg in "$@"; do
        if [[ $arg != -* && $previous != -c && $previous != -C ]]; then subcommand=$arg; break; fi
        previous=$arg
    done
    IFS=, read -ra rules <<< "$ADW_FAULT_SLOW"
    for rule in "${rules[@]}"; do
        if [[ ${rule%%=*} == "$subcommand" ]]; then sleep "${rule#*=}"; fi
    done
fi
exec -a git "$ADW_FAULT_REAL_GIT" "$@"
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
        self.reset()
        wrapper = self.bin / "git"
        wrapper.write_text(_WRAPPER, encoding="utf-8")
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
        self.reset()
        done = subprocess.run(
            [sys.executable, "-m", "adw", *args],
            cwd=cwd,
            env=self.env(kill_at, slow),
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # its own process group: the kill takes ADW and its children, not pytest
        )
        return FaultRun(done.returncode, done.stdout, done.stderr, self.calls_so_far())

    def reset(self) -> None:
        (self.state / "calls").write_bytes(b"")
        (self.state / "count").write_text("0\n", encoding="utf-8")

    def calls_so_far(self) -> list[list[str]]:
        """The git calls of the current (or last) `run`, in the order they were numbered."""
        fields = (self.state / "calls").read_bytes().split(b"\0")
        calls: list[list[str]] = []
        start = 0
        while start < len(fields) and fields[start]:
            count = int(fields[start])
            if start + count + 1 >= len(fields):
                break  # a record being written as we read
            calls.append([os.fsdecode(arg) for arg in fields[start + 1 : start + 1 + count]])
            start += count + 1
        return calls
