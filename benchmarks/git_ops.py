"""Speed of ADW's git core against its bare-git floor. A documented command, not part of the test suite.

    .venv/bin/python benchmarks/git_ops.py            # 1,000- and 10,000-file repositories (~3-5 min)
    .venv/bin/python benchmarks/git_ops.py --quick    # smoke run: 1,000 files, 3 runs, k = 10 and 100 (~30 s)
    .venv/bin/python benchmarks/git_ops.py --sizes 10000 --runs 9 --json results.json --keep
    .venv/bin/python benchmarks/git_ops.py --watched 50000 # only the language server's watched checkpoint
    .venv/bin/python benchmarks/git_ops.py --cli      # the real `adw` command per run beside the floor (~3-6 min)

What it does, in one process and one long-lived asyncio loop (the way the language server calls ADW):

1. Generates synthetic repositories with `git fast-import`: small text files (0.2-1 KB, 20 per folder), five
   commits (the first adds everything, each later one rewrites 50 files), a `.gitignore`, a `.worktreeinclude`
   naming an ignored `.env` that worktree creation copies. Then checks the main worktree out.
2. Measures each ADW operation through its Python API (`Worktrees`, `Checkpoints`; one instance per worktree,
   reused) against the floor: the cheapest correct bare-git recipe of /work/shared/reference/git-performance-floor.md,
   spawned from the same process with `asyncio.create_subprocess_exec`:

   | ADW call                       | floor                                                                          |
   |--------------------------------|--------------------------------------------------------------------------------|
   | `Worktrees.create(name)`       | `git worktree add -b B PATH main` + copy of the `.worktreeinclude` files         |
   | `Checkpoints.checkpoint()`     | shadow index: `add -A`, `write-tree`, `commit-tree -p HEAD`, `update-ref`      |
   | `Checkpoints.undo()`           | shadow index: `add -A`, `write-tree`, `commit-tree`, `update-ref` (redo point), |
   | `Checkpoints.redo()`           |   `read-tree -u --reset TARGET^{tree}`                                          |
   | `Worktrees.all()` (the list)   | `git worktree list --porcelain` (20 worktrees)                                  |
   | `Worktrees.remove(name, force)`| rename into a trash folder, `worktree prune`, `branch -D`, delete in background |

   ADW and floor run interleaved (A B A B) on twin worktrees made from the same commit; every checkpoint/undo
   run first changes k files (untimed prepare) so each run does real work. One untimed warm-up per instance:
   a create pair on the first repository, a checkpoint and an undo/redo round per twin worktree.
   Cells: median wall time (perf_counter) and median CPU (this process + its children, from getrusage), the
   ratio of the wall medians, and the git spawns ADW made (counted by wrapping `adw.git.runner._spawn`).
   `remove` runs last and shows wall only: the background deletions it starts are reaped at random moments,
   which would pollute the CPU figures of whatever ran after them.
3. Judges the targets on the largest repository (`remove`: on every size) and prints a Markdown table and the
   spawn profile of every ADW operation (time per git subcommand, plus the time outside git).

`--cli` (issue #14): the same repositories (default 10,000 files, 20 worktrees), but each ADW run spawns the real
`adw` command (`.venv/bin/adw`, a fresh process: interpreter start, imports, configuration) beside the floor spawned
as bare git, interleaved, medians of `--runs` (7): `adw worktree list` vs `git worktree list --porcelain`;
`adw checkpoint`/`undo`/`redo` (10 changed files) vs the shadow-index recipes above; `adw checkpoints` vs one
`git for-each-ref` of the checkpoint refs; `adw status` vs `git rev-parse --git-common-dir` (finding the repository:
the only git work it needs); and `adw worktree create` taking a ready worktree from the pool vs `git worktree add -b`
+ the setup command (`python -m venv --without-pip .venv`, written to the repository's `.adw.toml` for this cell),
with the background refill waited for (untimed) between runs. The spawn columns stay 0 for ADW: its git calls
happen in the child process.

Worktrees are created on the file system of `--dir` (default: the system temp dir). File creation is slow and
noisy on this machine's ext4 (see §1.1 of the floor notes), so nothing is deleted while timing except by the
`remove` cells, and the whole scratch folder is deleted in the background at exit (unless `--keep`).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import functools
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adw.git import runner
from adw.git.checkpoints import Checkpoints
from adw.git.worktrees import Worktrees
from adw.scouts.watch import Watch

IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma", "omega",
         "index", "tree", "blob", "commit", "merge", "branch", "token", "value", "parser", "render", "worker",
         "queue", "cache", "buffer", "stream", "packet", "module"]
FILES_PER_FOLDER = 20
LATER_COMMITS = 4
FILES_PER_LATER_COMMIT = 50
LIST_WORKTREES = 20

# ------------------------------------------------------------------------------------------ spawn accounting

SPAWNS: list[tuple[str, float]] = []
_original_spawn = runner._spawn


def _label(argv: list[str]) -> str:
    sub = argv[1] if len(argv) > 1 else "?"
    if sub in ("worktree", "read-tree") and len(argv) > 2:
        return f"{sub} {argv[2]}"
    return sub


async def _counting_spawn(argv: list[str], cwd: Path, env: dict[str, str], data: bytes | None,
                          timeout: float) -> tuple[int, str, str]:
    start = time.perf_counter()
    try:
        result: tuple[int, str, str] = await _original_spawn(argv, cwd, env, data, timeout)
        return result
    finally:
        SPAWNS.append((_label(argv), time.perf_counter() - start))


runner._spawn = _counting_spawn  # `runner.git` looks `_spawn` up at call time, so every ADW git call is counted


async def bare(*args: str | os.PathLike[str], cwd: Path, env: dict[str, str] | None = None,
               input: bytes | None = None) -> str:
    """One bare git command, spawned like ADW's (asyncio, pipes), for the floor recipes."""
    argv = ["git", *(os.fspath(arg) for arg in args)]
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env or BARE_ENV,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(input)
    SPAWNS.append((_label(argv), time.perf_counter() - start))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return out.decode().strip()


BARE_ENV = {**os.environ, **IDENTITY, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}


def sh(*args: str | os.PathLike[str], cwd: Path, input: bytes | None = None) -> str:
    """Untimed set-up command."""
    out = subprocess.run(["git", *(os.fspath(arg) for arg in args)], cwd=cwd, env=BARE_ENV, input=input,
                         capture_output=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(map(str, args))} failed: {out.stderr.decode(errors='replace')}")
    return out.stdout.decode().strip()


# ------------------------------------------------------------------------------------------ measuring

@dataclass
class Sample:
    wall: float
    cpu: float | None
    spawns: list[tuple[str, float]]


@dataclass
class Cell:
    size: int
    key: str
    op: str
    adw: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    adw_note: str = ""
    floor_note: str = ""

    @staticmethod
    def med(samples: list[Sample], what: str = "wall") -> float | None:
        values = [getattr(s, what) for s in samples if getattr(s, what) is not None]
        return statistics.median(values) * 1000 if values else None

    @property
    def cpu_ratio(self) -> float | None:
        a, f = self.med(self.adw, "cpu"), self.med(self.floor, "cpu")
        return a / f if a is not None and f else None

    @property
    def ratio(self) -> float | None:
        a, f = self.med(self.adw), self.med(self.floor)
        return a / f if a is not None and f else None


async def timed(action: Callable[[], Awaitable[Any]], cpu: bool = True) -> Sample:
    SPAWNS.clear()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    await action()
    wall = time.perf_counter() - start
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
            + kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime)
    return Sample(wall, used if cpu else None, list(SPAWNS))


# ------------------------------------------------------------------------------------------ repositories

def _content(rng: random.Random) -> bytes:
    lines = [" ".join(rng.choices(WORDS, k=8)) for _ in range(rng.randint(4, 18))]
    return ("\n".join(lines) + "\n").encode()  # ~50 chars a line: 0.2-1 KB


def _path(i: int) -> str:
    leaf = i // FILES_PER_FOLDER
    return f"src/m{leaf // 100:03d}/p{leaf // 10 % 10}/q{leaf % 10}/file_{i:06d}.txt"


def _blob(path: str, data: bytes) -> bytes:
    return b"M 100644 inline " + path.encode() + b"\ndata %d\n" % len(data) + data + b"\n"


def make_repo(base: Path, n: int, seed: int) -> tuple[Path, list[str]]:
    """A main worktree with n tracked text files and some history, generated with `git fast-import`."""
    rng = random.Random(seed + n)
    repo = base / f"r{n}"
    repo.mkdir(parents=True)
    sh("init", "-q", "-b", "main", cwd=repo)
    sh("config", "user.name", "Bench", cwd=repo)
    sh("config", "user.email", "bench@localhost", cwd=repo)
    paths = [_path(i) for i in range(n)]
    chunks: list[bytes] = []
    when = 1_700_000_000
    for number in range(1 + LATER_COMMITS):
        message = b"initial import" if number == 0 else b"rewrite %d files" % FILES_PER_LATER_COMMIT
        chunks.append(b"commit refs/heads/main\ncommitter Bench <bench@localhost> %d +0000\n" % (when + number * 60))
        chunks.append(b"data %d\n%s\n" % (len(message), message))
        if number == 0:
            chunks.append(_blob(".gitignore", b"*.log\nbuild/\n.env\n"))
            chunks.append(_blob(".worktreeinclude", b".env\n"))
            changed = paths
        else:
            changed = rng.sample(paths, min(FILES_PER_LATER_COMMIT, n))
        chunks.extend(_blob(p, _content(rng)) for p in changed)
        chunks.append(b"\n")
    sh("fast-import", "--quiet", cwd=repo, input=b"".join(chunks))
    sh("reset", "-q", "--hard", cwd=repo)
    (repo / ".env").write_text("SECRET_TOKEN=bench\nDATABASE_URL=sqlite:///dev.db\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.log").write_text("ignored build output\n")
    return repo, paths


def changed_set(paths: list[str], k: int) -> list[str]:
    """k files spread over the whole tree."""
    step = max(1, len(paths) // k)
    return paths[::step][:k]


def mutate(root: Path, files: list[str], tag: str) -> None:
    """Give each file new content (a never-seen blob), like an agent's edit."""
    for rel in files:
        (root / rel).write_text(f"{tag} {rel}\n" * 6 + "edited by the benchmark\n")


# ------------------------------------------------------------------------------------------ floor recipes

class FloorCheckpoints:
    """The floor recipes of §3/§4 of the floor notes: a persistent shadow index and four/five plumbing spawns."""

    def __init__(self, worktree: Path) -> None:
        self.wt = worktree
        git_dir = Path(sh("rev-parse", "--absolute-git-dir", cwd=worktree))
        shadow = git_dir / "bench-shadow-index"
        shutil.copyfile(git_dir / "index", shadow)
        self.env = {**BARE_ENV, "GIT_INDEX_FILE": str(shadow)}
        self.n = 0
        self.latest = ""

    async def checkpoint(self) -> None:
        self.n += 1
        await bare("add", "-A", cwd=self.wt, env=self.env)
        tree = await bare("write-tree", cwd=self.wt, env=self.env)
        commit = await bare("commit-tree", tree, "-p", "HEAD", "-m", f"checkpoint {self.n}", cwd=self.wt, env=self.env)
        await bare("update-ref", f"refs/checkpoints/floor/{self.n}", commit, cwd=self.wt, env=self.env)
        self.latest = commit

    async def restore(self, target: str) -> str:
        """Save the current state as a redo point, then make the files those of `target`; returns the redo commit."""
        await bare("add", "-A", cwd=self.wt, env=self.env)
        tree = await bare("write-tree", cwd=self.wt, env=self.env)
        saved = await bare("commit-tree", tree, "-p", "HEAD", "-m", "redo", cwd=self.wt, env=self.env)
        await bare("update-ref", "refs/checkpoints/floor/redo", saved, cwd=self.wt, env=self.env)
        await bare("read-tree", "-u", "--reset", f"{target}^{{tree}}", cwd=self.wt, env=self.env)
        return saved


# ------------------------------------------------------------------------------------------ the cells

class Bench:
    def __init__(self, base: Path, runs: int, create_runs: int, list_runs: int, ks: list[int]) -> None:
        self.base = base
        self.runs = runs
        self.create_runs = create_runs
        self.list_runs = list_runs
        self.ks = ks
        self.cells: list[Cell] = []
        self.first_size = 0
        self.state: dict[int, dict[str, Any]] = {}

    def runs_for(self, k: int) -> int:
        """Rewriting 1000 files costs seconds on this disk; those cells get two runs fewer (never below 3)."""
        return self.runs if k < 1000 else max(3, self.runs - 2)

    def cell(self, size: int, key: str, op: str | None = None) -> Cell:
        made = Cell(size, key, op or key)
        self.cells.append(made)
        return made

    def log(self, text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    async def setup(self, n: int) -> None:
        start = time.perf_counter()
        repo, paths = make_repo(self.base, n, seed=7)
        twins = self.base / f"r{n}.floor"
        for name in ("ck-adw", "ck-floor"):
            sh("worktree", "add", "-q", "-b", f"bench/{name}", twins / name, "main", cwd=repo)
        self.state[n] = {"repo": repo, "paths": paths, "twins": twins,
                         "wts": await Worktrees.open(repo), "includes": [".env"]}
        self.log(f"r{n}: repository and 2 twin worktrees ready in {time.perf_counter() - start:.1f} s")

    async def bench_create(self, n: int) -> None:
        st = self.state[n]
        wts: Worktrees = st["wts"]
        repo: Path = st["repo"]
        cell = self.cell(n, "create", "create (full checkout + include copy)")

        async def floor_create(i: int) -> None:
            path = st["twins"] / f"fc{i}"  # not c{i}: ADW's get() also matches other worktrees' folder names
            await bare("worktree", "add", "-q", "-b", f"floor/c{i}", path, "main", cwd=repo)
            for rel in st["includes"]:
                shutil.copy2(repo / rel, path / rel)

        if n == self.first_size:  # one warm-up pair per process: 10k-file checkouts cost seconds here
            await wts.create("warm")
            await floor_create(-1)
        for i in range(self.create_runs):
            cell.adw.append(await timed(functools.partial(wts.create, f"c{i}")))
            cell.floor.append(await timed(functools.partial(floor_create, i)))
        assert (wts.root / "c0" / ".env").is_file(), "ADW did not copy the .worktreeinclude file"
        self.log(f"r{n}: create done ({cell.med(cell.adw):.0f} vs {cell.med(cell.floor):.0f} ms)")

    async def bench_checkpoints(self, n: int) -> None:
        st = self.state[n]
        adw_wt, floor_wt = st["twins"] / "ck-adw", st["twins"] / "ck-floor"
        ck = await Checkpoints.open(adw_wt)
        fl = FloorCheckpoints(floor_wt)
        # First checkpoint of each: seeds the shadow indexes (untimed, once, as in a long-lived server).
        await ck.checkpoint("base")
        await fl.checkpoint()
        for k in self.ks:
            files = changed_set(st["paths"], k)
            cp = self.cell(n, f"checkpoint, {k} changed")
            warm = int(k == self.ks[0])  # one untimed warm-up run per instance; later cells start warm
            for run in range(1 - warm, self.runs_for(k) + 1):
                mutate(adw_wt, files, f"ck{k}-{run}-a")
                adw = await timed(functools.partial(ck.checkpoint, f"bench {k} {run}"))
                mutate(floor_wt, files, f"ck{k}-{run}-f")
                floor = await timed(fl.checkpoint)
                if run:  # run 0 is the warm-up
                    cp.adw.append(adw)
                    cp.floor.append(floor)
            self.log(f"r{n}: checkpoint k={k} done ({cp.med(cp.adw):.0f} vs {cp.med(cp.floor):.0f} ms)")
        for k in self.ks:
            files = changed_set(st["paths"], k)
            undo = self.cell(n, f"undo, {k} changed")
            redo = self.cell(n, f"redo, {k} changed")
            warm = int(k == self.ks[0])
            for run in range(1 - warm, self.runs_for(k) + 1):
                mutate(adw_wt, files, f"un{k}-{run}-a")
                result = await timed(ck.undo)
                mutate(floor_wt, files, f"un{k}-{run}-f")
                target = fl.latest
                saved: list[str] = []

                async def floor_undo(target: str = target, saved: list[str] = saved) -> None:
                    saved.append(await fl.restore(target))

                f_undo = await timed(floor_undo)
                a_redo = await timed(ck.redo)

                async def floor_redo(saved: list[str] = saved) -> None:
                    await fl.restore(saved[0])
                    fl.latest = saved[0]  # like ADW: the redone state is now the top of the undo stack

                f_redo = await timed(floor_redo)
                if run:
                    undo.adw.append(result)
                    undo.floor.append(f_undo)
                    redo.adw.append(a_redo)
                    redo.floor.append(f_redo)
            probe = adw_wt / files[0]
            assert probe.read_text().startswith(f"un{k}-{self.runs_for(k)}-a"), "ADW redo did not bring the edit back"
            self.log(f"r{n}: undo/redo k={k} done ({undo.med(undo.adw):.0f} vs {undo.med(undo.floor):.0f} ms, "
                     f"{redo.med(redo.adw):.0f} vs {redo.med(redo.floor):.0f} ms)")

    async def bench_watched(self, n: int) -> None:
        """A checkpoint of 10 changed files as the language server makes it: a long-lived instance whose inotify
        watch names the changed paths, so only they are added (the floor still runs `add -A`)."""
        st = self.state[n]
        adw_wt, floor_wt = st["twins"] / "ck-adw", st["twins"] / "ck-floor"
        ck = await Checkpoints.open(adw_wt)
        ck.tracker = await asyncio.to_thread(Watch.open, adw_wt, (ck.repo.git_dir, ck.repo.common_dir), True)
        assert ck.tracker is not None, "no inotify here"
        fl = FloorCheckpoints(floor_wt)
        await ck.checkpoint("base")  # full: the watch covers what follows
        await fl.checkpoint()
        files = changed_set(st["paths"], 10)
        cell = self.cell(n, "checkpoint, 10 changed, watched", "checkpoint, 10 changed, inotify watch (server)")
        for run in range(self.runs + 1):  # run 0: the untimed warm-up
            mutate(adw_wt, files, f"w-{run}-a")
            adw = await timed(functools.partial(ck.checkpoint, f"watched {run}"))
            mutate(floor_wt, files, f"w-{run}-f")
            floor = await timed(fl.checkpoint)
            if run:
                cell.adw.append(adw)
                cell.floor.append(floor)
        self.log(f"r{n}: watched checkpoint done ({cell.med(cell.adw):.0f} vs {cell.med(cell.floor):.0f} ms)")

    async def bench_list(self, n: int) -> None:
        st = self.state[n]
        wts: Worktrees = st["wts"]
        repo: Path = st["repo"]
        have = sh("worktree", "list", "--porcelain", cwd=repo).count("worktree ")
        for i in range(LIST_WORKTREES - have):  # fillers: metadata-only worktrees, listing never reads files
            sh("worktree", "add", "-q", "--no-checkout", "-b", f"fill/{i}", st["twins"] / f"fill{i}", "main", cwd=repo)
        listing = _lister(wts)
        count = len(await listing())
        cell = self.cell(n, "list", f"list ({count} worktrees)")
        await bare("worktree", "list", "--porcelain", cwd=repo)
        for _ in range(self.list_runs):
            cell.adw.append(await timed(listing))
            cell.floor.append(await timed(lambda: bare("worktree", "list", "--porcelain", cwd=repo)))
        self.log(f"r{n}: list done ({cell.med(cell.adw):.1f} vs {cell.med(cell.floor):.1f} ms)")

    async def bench_remove(self, n: int) -> None:
        st = self.state[n]
        wts: Worktrees = st["wts"]
        repo: Path = st["repo"]
        trash = st["twins"] / ".trash"
        trash.mkdir(exist_ok=True)
        cell = self.cell(n, "remove", "remove (force)")
        cell.floor_note = "rename + worktree prune + branch -D + background delete"

        async def floor_remove(i: int) -> None:
            path = st["twins"] / f"fc{i}"
            target = trash / f"fc{i}-{time.time_ns()}"
            path.rename(target)
            await bare("worktree", "prune", cwd=repo)
            await bare("branch", "-q", "-D", f"floor/c{i}", cwd=repo)
            _rmtree_in_background(target)

        for i in range(self.create_runs):
            cell.adw.append(await timed(functools.partial(wts.remove, f"c{i}", force=True), cpu=False))
            cell.floor.append(await timed(functools.partial(floor_remove, i), cpu=False))
        assert not (wts.root / "c0").exists()
        self.log(f"r{n}: remove done ({cell.med(cell.adw):.0f} vs {cell.med(cell.floor):.0f} ms)")


def _lister(wts: Worktrees) -> Callable[[], Awaitable[Any]]:
    """`Worktrees.all()` (called `list()` until 4e65252 renamed it)."""
    return getattr(wts, "all", None) or wts.list  # type: ignore[no-any-return]


def _rmtree_in_background(path: Path) -> None:
    subprocess.Popen(
        ["nice", "-n", "10", sys.executable, "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], True)", str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


# ------------------------------------------------------------------------------------------ the CLI cells

ADW_CLI = Path(sys.executable).parent / "adw"
# As a user's install runs it: with its bytecode cache. A PYTHONDONTWRITEBYTECODE inherited from a CI shell would
# make every run compile ADW's sources again (~50 ms CPU per process measured on this machine).
CLI_ENV = {name: value for name, value in BARE_ENV.items() if name != "PYTHONDONTWRITEBYTECODE"}
POOL_SETUP = [sys.executable, "-m", "venv", "--without-pip", ".venv"]


class CliBench(Bench):
    """`--cli`: the real `adw` command spawned for each run, beside the bare-git floor spawned the same way."""

    async def adw(self, cwd: Path, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            ADW_CLI, *args, cwd=cwd, env=CLI_ENV, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"adw {' '.join(args)} failed ({proc.returncode}): {err.decode(errors='replace')}")
        return out.decode()

    async def bench_interpreter(self) -> None:
        """What any Python command line pays before its own code, at the same moments: the interpreter start
        (floor column) and the imports every ADW git command needs, asyncio and pydantic (ADW column)."""
        cell = self.cell(0, "cli python", "reference: `python -c 'import asyncio, pydantic.BaseModel'` vs "
                                          "`python -c pass`")
        imports = "import asyncio; from pydantic import BaseModel"

        async def python(*args: str) -> None:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", *args)
            await proc.wait()

        for _ in range(self.runs):
            cell.adw.append(await timed(functools.partial(python, imports)))
            cell.floor.append(await timed(functools.partial(python, "pass")))
        self.log(f"python start done ({cell.med(cell.adw):.0f} vs {cell.med(cell.floor):.0f} ms)")

    resident = False  # `--resident`: the repository's resident ADW answers the commands it serves

    async def run_cli(self, n: int) -> None:
        repo: Path = self.state[n]["repo"]
        if self.resident:
            await self.adw(repo, "daemon", "start", "--idle", "120")
        try:
            await self.run_cli_commands(n)
        finally:
            if self.resident:
                await self.adw(repo, "daemon", "stop")

    async def run_cli_commands(self, n: int) -> None:
        st = self.state[n]
        repo: Path = st["repo"]
        adw_wt, floor_wt = st["twins"] / "ck-adw", st["twins"] / "ck-floor"
        await self.bench_list_cli(n)
        fl = FloorCheckpoints(floor_wt)
        await self.adw(adw_wt, "checkpoint", "-m", "base")
        await fl.checkpoint()
        files = changed_set(st["paths"], 10)
        edits = ("checkpoint", "undo", "redo")
        cells = {op: self.cell(n, f"cli {op}", f"`adw {op}`" + (", 10 changed" if op in edits else ""))
                 for op in (*edits, "checkpoints", "status")}
        cells["status"].floor_note = "`git rev-parse --git-common-dir`"
        for run in range(self.runs + 1):  # run 0: untimed warm-up
            mutate(adw_wt, files, f"cli{run}-a")
            samples = {"checkpoint": await timed(lambda: self.adw(adw_wt, "checkpoint"))}
            mutate(floor_wt, files, f"cli{run}-f")
            floors = {"checkpoint": await timed(fl.checkpoint)}
            mutate(adw_wt, files, f"cliu{run}-a")
            samples["undo"] = await timed(lambda: self.adw(adw_wt, "undo"))
            mutate(floor_wt, files, f"cliu{run}-f")
            saved: list[str] = []

            async def floor_undo(saved: list[str] = saved) -> None:
                saved.append(await fl.restore(fl.latest))

            floors["undo"] = await timed(floor_undo)
            samples["redo"] = await timed(lambda: self.adw(adw_wt, "redo"))

            async def floor_redo(saved: list[str] = saved) -> None:
                await fl.restore(saved[0])
                fl.latest = saved[0]

            floors["redo"] = await timed(floor_redo)
            samples["checkpoints"] = await timed(lambda: self.adw(adw_wt, "checkpoints"))
            floors["checkpoints"] = await timed(lambda: bare(
                "for-each-ref", "--format=%(refname) %(committerdate:iso) %(subject)", "refs/checkpoints/floor/",
                cwd=floor_wt))
            samples["status"] = await timed(lambda: self.adw(repo, "status"))
            floors["status"] = await timed(lambda: bare("rev-parse", "--git-common-dir", cwd=repo))
            if run:
                for op, cell in cells.items():
                    cell.adw.append(samples[op])
                    cell.floor.append(floors[op])
        for op, cell in cells.items():
            self.log(f"r{n}: cli {op} done ({cell.med(cell.adw):.0f} vs {cell.med(cell.floor):.0f} ms)")
        await self.bench_pool(n)

    async def bench_list_cli(self, n: int) -> None:
        st = self.state[n]
        repo: Path = st["repo"]
        have = sh("worktree", "list", "--porcelain", cwd=repo).count("worktree ")
        for i in range(LIST_WORKTREES - have):
            sh("worktree", "add", "-q", "--no-checkout", "-b", f"fill/{i}", st["twins"] / f"fill{i}", "main", cwd=repo)
        cell = self.cell(n, "cli list", f"`adw worktree list` ({LIST_WORKTREES} worktrees)")
        await self.adw(repo, "worktree", "list")
        for _ in range(self.runs):
            cell.adw.append(await timed(lambda: self.adw(repo, "worktree", "list")))
            cell.floor.append(await timed(lambda: bare("worktree", "list", "--porcelain", cwd=repo)))
        self.log(f"r{n}: cli list done ({cell.med(cell.adw):.0f} vs {cell.med(cell.floor):.1f} ms)")

    async def bench_pool(self, n: int) -> None:
        """`adw worktree create` taking a ready pool worktree vs `git worktree add` + the setup command. Between
        runs (untimed) the background refill the take started is waited for, so each take finds a ready one."""
        st = self.state[n]
        repo: Path = st["repo"]
        (repo / ".adw.toml").write_text(f"[worktree]\nsetup = {json.dumps(POOL_SETUP)}\n")
        cell = self.cell(n, "cli pool", "`adw worktree create` from the pool (setup: `python -m venv`)")
        cell.floor_note = "`git worktree add -b` + the setup command"

        async def floor_create(i: int) -> None:
            path = st["twins"] / f"pf{i}"
            await bare("worktree", "add", "-q", "-b", f"floor/p{i}", path, "main", cwd=repo)
            proc = await asyncio.create_subprocess_exec(*POOL_SETUP, cwd=path)
            await proc.wait()

        await self.adw(repo, "worktree", "pool")
        for i in range(self.runs + 1):
            await _pool_settled(repo)
            adw = await timed(functools.partial(self.adw, repo, "worktree", "create", f"p{i}"))
            floor = await timed(functools.partial(floor_create, i))
            if i:
                cell.adw.append(adw)
                cell.floor.append(floor)
        messages = json.loads(await self.adw(repo, "worktree", "list", "--json"))
        assert sum(w["managed"] and w["name"].startswith("p") for w in messages) == self.runs + 1
        assert (st["repo"].parent / f"r{n}.worktrees" / "p1" / ".venv" / "bin").is_dir(), "no environment"
        self.log(f"r{n}: cli pool create done ({cell.med(cell.adw):.0f} vs {cell.med(cell.floor):.0f} ms)")


async def _pool_settled(repo: Path) -> None:
    """Wait until the pool is full again (2 ready worktrees, the default size) and no refill holds its lock, so a
    timed run never overlaps the refill the previous take started."""
    records = repo / ".git" / "adw" / "pool"
    while True:
        ready = [p for p in records.glob("*.json") if json.loads(p.read_text()).get("ready")]
        with open(records / "fill.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free = True
            except BlockingIOError:
                free = False
        if free and len(ready) >= 2:
            return
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------------------ report

@dataclass
class Verdict:
    target: str
    measured: str
    ok: bool | None


def judge(cells: list[Cell], sizes: list[int]) -> list[Verdict]:
    big = max(sizes)
    by = {(c.size, c.key): c for c in cells}
    verdicts: list[Verdict] = []

    def ratio(key: str, limit: float, what: str) -> None:
        cell = by.get((big, key))
        if cell is None or cell.ratio is None:
            return
        verdicts.append(Verdict(f"{what} on r{big}: ≤ {limit}× floor", f"{cell.ratio:.2f}×", cell.ratio <= limit))

    ratio("create", 1.2, "create")
    ratio("checkpoint, 10 changed", 1.5, "checkpoint, 10 changed")
    ratio("undo, 10 changed", 1.5, "undo, 10 changed")
    ratio("redo, 10 changed", 1.5, "redo, 10 changed")
    ratio("list", 1.3, f"list of {LIST_WORKTREES} worktrees")
    for size in sizes:
        cell = by.get((size, "checkpoint, 10 changed, watched"))
        if cell is not None and (median := cell.med(cell.adw)) is not None:
            verdicts.append(Verdict(f"watched checkpoint, 10 changed on r{size}: ≤ 20 ms", f"median {median:.1f} ms",
                                    median <= 20))
        absolute = {"cli list": 50.0, "cli pool": 100.0}
        for key, limit in absolute.items():
            cell = by.get((size, key))
            if cell is not None and cell.med(cell.adw) is not None:
                median = cell.med(cell.adw) or 0.0
                verdicts.append(Verdict(f"{cell.op} on r{size}: ≤ {limit:.0f} ms wall", f"{median:.0f} ms",
                                        median <= limit))
        for op in ("checkpoint", "undo", "redo", "status", "checkpoints"):
            cell = by.get((size, f"cli {op}"))
            if cell is not None:
                a, f = cell.med(cell.adw) or 0.0, cell.med(cell.floor) or 0.0
                verdicts.append(Verdict(f"{cell.op} on r{size}: ≤ floor + 50 ms", f"{a:.0f} ms vs floor {f:.0f} ms "
                                        f"(+{a - f:.0f})", a - f <= 50))
    for size in sizes:
        cell = by.get((size, "remove"))
        if cell is not None:
            worst = max(s.wall for s in cell.adw) * 1000
            median = cell.med(cell.adw) or 0.0
            verdicts.append(Verdict(f"remove on r{size}: ≤ 100 ms", f"median {median:.0f} ms (max {worst:.0f})",
                                    median <= 100))
    if len(sizes) >= 2:
        small = min(sizes)
        for op in ("checkpoint", "undo"):
            lo, hi = by.get((small, f"{op}, 10 changed")), by.get((big, f"{op}, 10 changed"))
            many = by.get((big, f"{op}, 1000 changed"))
            if lo is None or hi is None or many is None:
                continue
            a_grow = (hi.med(hi.adw, "cpu") or 0) - (lo.med(lo.adw, "cpu") or 0)
            f_grow = (hi.med(hi.floor, "cpu") or 0) - (lo.med(lo.floor, "cpu") or 0)
            k_grow = (many.med(many.adw, "cpu") or 0) - (hi.med(hi.adw, "cpu") or 0)
            ok = a_grow <= 1.5 * max(f_grow, 0.0) + 10.0 and k_grow > 0
            verdicts.append(Verdict(
                f"{op}: cost follows changed files, not repo size (CPU medians: growth r{small}→r{big} at k=10 "
                "≤ 1.5× the floor's + 10 ms, and k 10→1000 grows)",
                f"r{small}→r{big}: ADW {a_grow:+.0f} ms, floor {f_grow:+.0f} ms; k 10→1000 on r{big}: "
                f"ADW {k_grow:+.0f} ms", ok))
    return verdicts


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 10 and digits == 0 else f"{value:.{digits}f}"


def spread(samples: list[Sample]) -> str:
    walls = sorted(s.wall * 1000 for s in samples)
    return f"{fmt(statistics.median(walls))} ({fmt(walls[0])}–{fmt(walls[-1])})"


def table(cells: list[Cell]) -> str:
    rows = ["| repo | operation | ADW wall ms, median (min–max) | floor wall ms, median (min–max) | ratio "
            "| ADW CPU ms | floor CPU ms | CPU ratio | git spawns ADW / floor |",
            "|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        spawns = f"{statistics.median(len(s.spawns) for s in c.adw):.0f} / " \
                 f"{statistics.median(len(s.spawns) for s in c.floor):.0f}"
        rows.append(f"| {f'r{c.size}' if c.size else '–'} | {c.op} | {spread(c.adw)} | {spread(c.floor)} | "
                    f"{fmt(c.ratio, 2)}× | {fmt(c.med(c.adw, 'cpu'))} | {fmt(c.med(c.floor, 'cpu'))} | "
                    f"{fmt(c.cpu_ratio, 2)}{'×' if c.cpu_ratio else ''} | {spawns} |")
    return "\n".join(rows)


def profile(cells: list[Cell]) -> str:
    """Per cell: median ms per git subcommand (summed over its calls in one run) and the time outside git."""
    lines = []
    for c in cells:
        for who, samples in (("ADW  ", c.adw), ("floor", c.floor)):
            per: dict[str, list[float]] = {}
            order: list[str] = []
            for s in samples:
                totals: dict[str, float] = {}
                for label, secs in s.spawns:
                    totals[label] = totals.get(label, 0.0) + secs
                    if label not in order:
                        order.append(label)
                for label in order:
                    per.setdefault(label, []).append(totals.get(label, 0.0) * 1000)
            counts: dict[str, int] = {}
            for label, _ in samples[-1].spawns:
                counts[label] = counts.get(label, 0) + 1
            outside = statistics.median((s.wall - sum(t for _, t in s.spawns)) * 1000 for s in samples)
            parts = [f"{label}{'×' + str(counts[label]) if counts.get(label, 1) > 1 else ''} "
                     f"{statistics.median(per[label]):.1f}" for label in order]
            lines.append(f"r{c.size} {c.op:<38} {who} {len(samples[-1].spawns):2d} spawns: "
                         + ", ".join(parts) + f"; outside git {outside:.1f} ms")
    return "\n".join(lines)


def machine(base: Path) -> str:
    fs = "?"
    best = ""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            _dev, mount, kind, *_ = line.split()
            if str(base.resolve()).startswith(mount) and len(mount) > len(best):
                best, fs = mount, kind
    git_version = sh("--version", cwd=base).removeprefix("git version ")
    here = Path(__file__).resolve().parent
    try:
        rev = sh("rev-parse", "--short", "HEAD", cwd=here)
        if sh("status", "--porcelain", "--", "../server/adw/git", cwd=here):
            rev += " + uncommitted changes in server/adw/git"
    except RuntimeError:
        rev = "(not a git checkout)"
    return (f"ADW {rev}; {os.cpu_count()} vCPU, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, git {git_version}, scratch on {fs} ({best})")


# ------------------------------------------------------------------------------------------ main

async def main_async(args: argparse.Namespace) -> int:
    base = Path(tempfile.mkdtemp(prefix="adw-gitbench-", dir=args.dir))
    bench = Bench(base, args.runs, args.create_runs, args.list_runs, ks=[10, 100] if args.quick else [10, 1000])
    if args.cli:
        bench = CliBench(base, args.runs, args.create_runs, args.list_runs, ks=[10])
        bench.resident = args.resident
    load0 = os.getloadavg()[0]
    started = time.perf_counter()
    print(f"scratch: {base}", file=sys.stderr)
    try:
        bench.first_size = args.sizes[0]
        if isinstance(bench, CliBench):
            await bench.bench_interpreter()
        for n in args.sizes if isinstance(bench, CliBench) else ():
            await bench.setup(n)
            await bench.run_cli(n)
        for n in () if isinstance(bench, CliBench) else args.sizes:
            await bench.setup(n)
            if args.watched:
                await bench.bench_watched(n)
                continue
            await bench.bench_create(n)
            await bench.bench_checkpoints(n)
            await bench.bench_watched(n)
            await bench.bench_list(n)
        for n in () if isinstance(bench, CliBench) or args.watched else args.sizes:  # last: its background
            await bench.bench_remove(n)  # deletions would skew CPU figures and file creation
    finally:
        if not args.keep:
            _rmtree_in_background(base)
        elif sys.stderr:
            print(f"kept {base}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    load1 = os.getloadavg()[0]
    verdicts = judge(bench.cells, args.sizes)
    command = "python benchmarks/git_ops.py" + (" --quick" if args.quick else "") + (" --cli" if args.cli else "") + (
        " --resident" if args.resident else "") + (
        f" --watched {args.watched}" if args.watched else "")
    print(f"\nMachine: {machine(base.parent)}; load average {load0:.1f} at start, {load1:.1f} at end; "
          f"total {elapsed:.0f} s.\nCommand: {command} (runs per cell: {args.runs} checkpoint/undo/redo, "
          f"{args.create_runs} create/remove, {args.list_runs} list; one untimed warm-up run per instance)\n")
    print(table(bench.cells))
    print("\n| target | measured | result |\n|---|---|---|")
    for v in verdicts:
        print(f"| {v.target} | {v.measured} | {'pass' if v.ok else 'FAIL'} |")
    print("\nSpawn profile (median ms per git subcommand in one operation, ×N = calls):")
    print(profile(bench.cells))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine(base.parent), "command": command, "elapsed_s": elapsed, "load": [load0, load1],
            "cells": [{"size": c.size, "op": c.op, "ratio": c.ratio,
                       "adw": [{"wall": s.wall, "cpu": s.cpu, "spawns": s.spawns} for s in c.adw],
                       "floor": [{"wall": s.wall, "cpu": s.cpu, "spawns": s.spawns} for s in c.floor]}
                      for c in bench.cells],
            "verdicts": [v.__dict__ for v in verdicts],
        }, indent=1))
    return 1 if args.strict and not all(v.ok for v in verdicts) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1,000-file repository only, 3 runs per cell, 10 and 100 changed files")
    parser.add_argument("--sizes", type=int, nargs="+", help="repository sizes in files (default 1000 10000)")
    parser.add_argument("--runs", type=int, help="timed runs per checkpoint/undo/redo cell (default 7)")
    parser.add_argument("--create-runs", type=int, help="timed create and remove runs (default 5)")
    parser.add_argument("--list-runs", type=int, help="timed list runs (default 15)")
    parser.add_argument("--dir", help="where to make the scratch folder (default: the system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument("--resident", action="store_true",
                        help="with --cli: start the repository's resident ADW (`adw daemon start`) first")
    parser.add_argument("--cli", action="store_true",
                        help="spawn the real `adw` for list, checkpoint, undo, redo, checkpoints, status and a create "
                        "from the worktree pool, beside the bare-git floor (default size: 10,000 files)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--watched", type=int, metavar="N",
                        help="only the watched checkpoint (the language server's), on an N-file repository")
    args = parser.parse_args()
    quick = args.quick
    default_sizes = [1000] if quick else [10000] if args.cli else [1000, 10000]
    args.sizes = [args.watched] if args.watched else args.sizes or default_sizes
    args.runs = args.runs or (3 if quick else 7)
    if not args.cli:  # the in-process cells compare a plain create; no background refills while timing
        os.environ["ADW_POOL"] = "0"
    args.create_runs = args.create_runs or (3 if quick else 5)
    args.list_runs = args.list_runs or (5 if quick else 15)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
