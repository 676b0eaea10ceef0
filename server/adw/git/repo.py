"""Repository discovery: where the worktree, its private git dir and the shared common dir are."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from adw.errors import GitError, NotARepositoryError, PathOutsideError
from adw.git.refs import ADW_DIR, CONFIG_CACHE
from adw.git.runner import git

MAIN_WORKTREE_ID = "@main"
# A file changed this close to the discovery that read it may change again within the same timestamp tick.
_RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Repo:
    """One worktree of a repository. `git_dir` is private to the worktree, `common_dir` shared by all."""

    root: Path
    git_dir: Path
    common_dir: Path

    @property
    def is_main(self) -> bool:
        return self.git_dir == self.common_dir

    @property
    def main_root(self) -> Path:
        """The main worktree's folder, where the configuration lives (this one when it is the main worktree)."""
        return self.common_dir.parent if self.common_dir.name == ".git" else self.root

    @property
    def worktree_id(self) -> str:
        """Stable id used in ref names: `@main` or git's own id of a linked worktree (its admin folder)."""
        return MAIN_WORKTREE_ID if self.is_main else self.git_dir.name

    @property
    def adw_dir(self) -> Path:
        """Shared state of ADW for the whole repository; inside .git, so never committed or crawled."""
        return self.common_dir / ADW_DIR

    @property
    def config_cache(self) -> Path:
        """Where the validated configuration is kept between processes (`adw.config.load_config`)."""
        return self.adw_dir / CONFIG_CACHE

    @property
    def private_dir(self) -> Path:
        """State private to this worktree (its shadow index, for instance)."""
        return self.git_dir / ADW_DIR

    @classmethod
    async def discover(cls, path: str | os.PathLike[str] = ".") -> Repo:
        """The worktree containing `path`. A process serving many commands (the language server, the resident ADW)
        asks git once per folder: the answer is reused while what decided it is unchanged (`_decided_by`)."""
        start = Path(path).resolve()
        probe = start if start.is_dir() else start.parent
        if not start.exists():
            raise NotARepositoryError(f"{start} does not exist", "pass a path inside a git repository")
        key = (probe, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GIT_"))))
        known = _discovered.get(key)
        if known is not None and _decided_by(probe, known[1]) == known[0]:
            return known[1]
        asked = time.time_ns()
        repo = await cls._ask_git(start, probe)
        stamp = _decided_by(probe, repo)
        inside = probe == repo.root or repo.root in probe.parents  # else a `core.worktree` elsewhere: ask each time
        if inside and not any(changed > asked - _RACY_NS for changed in _modified(stamp)):
            _discovered[key] = (stamp, repo)
        return repo

    @classmethod
    async def _ask_git(cls, start: Path, probe: Path) -> Repo:
        try:
            result = await git(
                "rev-parse", "--is-bare-repository", "--absolute-git-dir", "--git-common-dir", "--show-toplevel",
                cwd=probe,
            )
        except GitError as exc:
            if "not a git repository" in exc.stderr:
                raise NotARepositoryError(
                    f"{start} is not inside a git repository",
                    "run ADW from a git checkout, or create one with `git init` and a first commit",
                ) from None
            if "must be run in a work tree" in exc.stderr or "this operation must be run" in exc.stderr:
                raise NotARepositoryError(
                    f"{start} is inside a bare repository, which has no files to work on",
                    "clone it or add a worktree (`git worktree add PATH`) and run ADW there",
                ) from None
            raise
        lines = result.lines
        if lines[0] == "true" or len(lines) < 4:
            raise NotARepositoryError(
                f"{start} is a bare repository or a git directory, which has no files to work on",
                "run ADW in a checkout (a folder with your files), e.g. after `git worktree add PATH`",
            )
        git_dir = Path(lines[1])
        common = Path(lines[2])
        common_dir = (common if common.is_absolute() else probe / common).resolve()
        return cls(root=Path(lines[3]), git_dir=git_dir.resolve(), common_dir=common_dir)

    def contains(self, path: Path) -> bool:
        resolved = path.resolve()
        return resolved == self.root or self.root in resolved.parents

    def inside(self, relative: str) -> Path:
        """Resolve a user-given path and refuse one that leaves this worktree."""
        candidate = Path(relative)
        full = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if not self.contains(full):
            raise PathOutsideError(
                f"{relative} is outside the worktree {self.root}", "give a path inside the worktree"
            )
        return full

    def relpath(self, path: Path) -> str:
        return self.inside(str(path)).relative_to(self.root).as_posix()


_discovered: dict[tuple[Path, tuple[tuple[str, str], ...]], tuple[tuple[object, ...], Repo]] = {}


def _decided_by(probe: Path, repo: Repo) -> tuple[object, ...]:
    """The state of what git reads to find `repo` from `probe`: each folder between them (a `.git` or a repository
    appearing in one changes its times), the worktree's `.git` (a linked one's file names its git dir), whether
    the git dir still holds HEAD, the `commondir` link, and the configuration files (`core.bare`,
    `core.worktree`). A `.git` folder counts by identity only: git rewrites files in it all the time, and a new one
    in the same place finds the same paths."""
    parts: list[object] = []
    folder = probe
    while repo.root in folder.parents:
        parts.append(_full_stat(folder))
        folder = folder.parent
    dot_git = repo.root / ".git"
    parts.append(_identity(dot_git) if dot_git.is_dir() else _full_stat(dot_git))
    parts.append((repo.git_dir / "HEAD").exists())
    for linked in (repo.git_dir / "commondir", repo.common_dir / "config", repo.git_dir / "config.worktree"):
        parts.append(_full_stat(linked))
    return tuple(parts)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _full_stat(path: Path) -> tuple[int, int, int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mode, found.st_mtime_ns, found.st_ctime_ns


def _modified(stamp: tuple[object, ...]) -> list[int]:
    """The modification times in `stamp` (what a later write changes; a rename replaces the inode)."""
    return [part[3] for part in stamp if isinstance(part, tuple) and len(part) == 5]
