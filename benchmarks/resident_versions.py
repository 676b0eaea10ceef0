"""The resident ADW's quick commands of two revisions side by side, at the same moments. A documented command, not
part of the test suite.

    .venv/bin/python benchmarks/resident_versions.py              # main against the working tree's HEAD, 15 runs
    .venv/bin/python benchmarks/resident_versions.py --old 70f5602 --new HEAD --runs 25

On a loaded machine a fresh Python process waits for a CPU about as long as the command-line targets allow, so a
wall time measured at one moment cannot be compared with one measured quietly at another; two revisions measured
in alternation can. Each revision's `server/` is exported with `git archive` and put on `PYTHONPATH` of this
virtualenv's `adw`; each gets its own resident ADW (`adw daemon start`) on its own copy of a 10,000-file repository
(benchmarks/git_ops.py's generator) with a linked worktree; then, alternating which goes first, each round edits 10
files in each worktree and times `adw checkpoint` and `adw checkpoints` there, `adw status` and `adw worktree list`
in the main worktree, beside `python -c pass` and the bare-git floors of `status` and `checkpoints`. Prints the
median and minimum wall time and the median CPU of the `adw` client process (the resident ADW's own CPU is not
a child's), and the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from git_ops import BARE_ENV, changed_set, make_repo, mutate, sh

ADW = str(Path(sys.executable).parent / "adw")
FILES = 10_000
CHANGED = 10


def export(revision: str, into: Path) -> Path:
    """The revision's `server/` folder, unpacked under `into`."""
    archive = subprocess.run(["git", "archive", revision, "server"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "server"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one process (its own CPU and its children's)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    assert process.stderr is not None
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {process.stderr.read().decode(errors='replace')}")
    process.stderr.close()
    return (time.perf_counter() - started) * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="main", help="the revision measured first in each pair (default main)")
    parser.add_argument("--new", default="HEAD", help="the revision it is compared with (default HEAD)")
    parser.add_argument("--runs", type=int, default=15, help="timed rounds (after one untimed warm-up round)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="adw-resident-versions-"))
    versions = {"old": args.old, "new": args.new}
    envs, worktrees, mains = {}, {}, {}
    for key, revision in versions.items():
        source = export(revision, base / f"{key}-src")
        envs[key] = {**BARE_ENV, "PYTHONPATH": str(source)}
        envs[key].pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's install runs: with its bytecode cache
        mains[key], paths = make_repo(base / key, FILES, seed=0)
        worktrees[key] = base / key / "linked"
        sh("worktree", "add", "-q", "-b", "linked", worktrees[key], "main", cwd=mains[key])
        subprocess.run([ADW, "-C", str(worktrees[key]), "daemon", "start", "--idle", "20"], env=envs[key],
                       check=True, capture_output=True)
        subprocess.run([ADW, "-C", str(worktrees[key]), "checkpoint", "-m", "base"], env=envs[key], check=True,
                       capture_output=True)
    files = changed_set(paths, CHANGED)  # the same in both copies: one generator, one seed
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    load = os.getloadavg()[0]
    try:
        for round_ in range(args.runs + 1):
            for key in ("old", "new") if round_ % 2 else ("new", "old"):
                mutate(worktrees[key], files, f"round {round_} {random.random()}")
                for name, argv, cwd in (
                    ("adw checkpoint", ["checkpoint"], worktrees[key]),
                    ("adw checkpoints", ["checkpoints"], worktrees[key]),
                    ("adw status", ["status"], mains[key]),
                    ("adw worktree list", ["worktree", "list"], mains[key]),
                ):
                    sample = timed([ADW, *argv], cwd, envs[key])
                    if round_:
                        samples.setdefault((name, versions[key]), []).append(sample)
            for name, argv, cwd in (
                ("python -c pass", [sys.executable, "-c", "pass"], base),
                ("floor of status: git rev-parse --git-common-dir", ["git", "rev-parse", "--git-common-dir"],
                 mains["new"]),
                ("floor of checkpoints: git for-each-ref", ["git", "for-each-ref", "refs/adw/"], worktrees["new"]),
            ):
                sample = timed(argv, cwd, envs["new"])
                if round_:
                    samples.setdefault((name, ""), []).append(sample)
    finally:
        for key in worktrees:
            subprocess.run([ADW, "-C", str(worktrees[key]), "daemon", "stop"], env=envs[key], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    print(f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; {args.runs} rounds")
    print("| what | revision | wall ms, median (min) | client CPU ms, median |\n|---|---|---|---|")
    for (name, revision), taken in samples.items():
        walls, cpus = [wall for wall, _ in taken], [cpu for _, cpu in taken]
        print(f"| {name} | {revision} | {statistics.median(walls):.1f} ({min(walls):.1f}) | "
              f"{statistics.median(cpus):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
