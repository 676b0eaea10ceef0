"""The repository's past as evidence: which files changed for tasks worded like this one.

`History` holds the last `LIMIT` non-merge commits reachable from HEAD, never a commit after it: subject, body,
time and the files each one touched, read once with `git log --name-status -M` and cached by HEAD. When HEAD
moves forward, only the new commits are read (`read_history` with the previous history). Renames are
followed, so an old commit votes for the file under its current name; files that no longer exist get no vote
(the caller asks only about its tree's files).

A task is matched against the messages like the corpus is against files (same normalisation, same terms:
a stem found as a substring, a short one only at a word's start), weighted by inverse document frequency
over commits; a word in the subject counts fully, in the body `_BODY`. A commit's vote is
`share ** _POWER * recency / files ** _SIZE` (`share`: the part of the task's weight it matches), spread
over the files it touched. Mass changes (more than `MASS_CHANGE` files, or a formatting commit of more than a
few) vote for nothing: they say nothing about where a kind of task lands. Files that changed together with
the strongest matches get a weak vote of their own (`cochanged`).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from adw.errors import GitError
from adw.git.runner import git
from adw.scouts.corpus import TABLE
from adw.scouts.terms import Term

LIMIT = 5000  # commits read; older ones rarely predict where today's work lands
MASS_CHANGE = 40  # a commit touching more files is a tree-wide change (formatting, renames), not a task
RECENT = 300  # commits counted by `churn`
_FORMATTING = re.compile(
    r"\b(format|formatting|reformat|black|ruff|isort|flake8|lint|linting|pre-commit|whitespace|typos?|"
    r"pyupgrade|copyright|licen[cs]e|rename|renames|move|moved)\b",
    re.IGNORECASE,
)
_FORMATTING_FILES = 5  # a formatting subject with more files than this is a mass change
_BODY = 0.3  # a word only in the body counts this share of one in the subject
_BODY_CHARS = 2000  # long bodies are changelogs and templates: their start says what the commit does
_POWER = 2.0  # a commit that matches most of the task counts far more than several that match a word
_MIN_SHARE = 0.1  # commits matching less of the task's weight are not counted at all
_SIZE = 0.5  # a commit's vote is spread over its files, less than evenly (a task touches a few files)
_HALF_LIFE = 1500  # commits: a commit this many commits older votes half as much
_COCHANGE = 0.3  # co-changed files of the strongest matches get at most this share of their score
_COCHANGE_FILES = 10  # only commits this small say that two files belong together
_ANCHORS = 3
_SEPARATOR = "\x01"
_FORMAT = f"--format={_SEPARATOR}%H%x00%ct%x00%s%x00%b%x00"


class Change(NamedTuple):  # named tuples: 30,000 of them are made from one log
    status: str  # A, M, D, T, R (renamed), C (copied)
    path: str
    old: str = ""  # the path before a rename or copy


class Commit(NamedTuple):
    sha: str
    time: int
    subject: str
    body: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Vote:
    score: float
    commits: int  # commits that voted for the file
    best: Commit | None  # the one that voted most; None for a co-change vote
    partner: str = ""  # for a co-change vote: the file it changed with


@dataclass(slots=True)
class History:
    """The commits reachable from `head`, newest first, and what is derived from them (see the module doc)."""

    head: str
    commits: tuple[Commit, ...]
    files: list[tuple[str, ...]] = field(init=False)  # per commit: the files it touched, by their current name
    mass: list[bool] = field(init=False)
    churn: dict[str, int] = field(init=False)  # current name -> commits among the newest `RECENT` touching it
    _subjects: str = field(init=False)  # one padded, normalised line per commit
    _bodies: str = field(init=False)
    _starts: tuple[list[int], list[int]] = field(init=False)
    _found: dict[str, tuple[frozenset[int], frozenset[int]]] = field(init=False, default_factory=dict)
    _touching: dict[str, list[int]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.files, self.mass = _current_names(self.commits)
        churn: dict[str, int] = {}
        for files in self.files[:RECENT]:
            for path in files:
                churn[path] = churn.get(path, 0) + 1
        self.churn = churn
        self._subjects = _lines(c.subject for c in self.commits)
        self._bodies = _lines(c.body[:_BODY_CHARS].replace("\n", " ") for c in self.commits)
        self._starts = _starts_of(self._subjects), _starts_of(self._bodies)

    @classmethod
    def empty(cls, head: str = "") -> History:
        return cls(head, ())

    def __len__(self) -> int:
        return len(self.commits)

    def find(self, term: Term) -> tuple[frozenset[int], frozenset[int]]:
        """The commits whose subject, and those whose body, contain `term` (memoised)."""
        found = self._found.get(term.needle)
        if found is None:
            found = self._found[term.needle] = (
                _lines_with(self._subjects, self._starts[0], term.needle),
                _lines_with(self._bodies, self._starts[1], term.needle),
            )
        return found

    def votes(
        self, terms: Iterable[Term], weights: dict[Term, float], exists: set[str] | dict[str, int]
    ) -> dict[str, Vote]:
        """Each existing file's vote from the commits that match `terms` (weighted by `weights` times their idf
        over commits), plus co-change votes for the files that changed beside the strongest ones."""
        count = len(self.commits)
        if not count:
            return {}
        match: dict[int, float] = {}
        total = 0.0
        for term in terms:
            in_subject, in_body = self.find(term)
            documents = len(in_subject | in_body)
            idf = math.log(1 + (count - documents + 0.5) / (documents + 0.5)) * weights.get(term, 1.0)
            total += idf
            for commit in in_subject:
                match[commit] = match.get(commit, 0.0) + idf
            for commit in in_body - in_subject:
                match[commit] = match.get(commit, 0.0) + _BODY * idf
        if total <= 0:
            return {}
        votes: dict[str, list[float]] = {}  # path -> [score, commits, best commit's vote, best commit]
        for commit, score in match.items():
            share = score / total
            files = self.files[commit]
            if share < _MIN_SHARE or self.mass[commit] or not files:
                continue
            vote = share**_POWER * 0.5 ** (commit / _HALF_LIFE) / len(files) ** _SIZE
            for path in files:
                if path in exists:
                    entry = votes.setdefault(path, [0.0, 0, 0.0, commit])
                    entry[0] += vote
                    entry[1] += 1
                    if vote > entry[2]:
                        entry[2], entry[3] = vote, commit
        result = {
            path: Vote(score, int(commits), self.commits[int(best)])
            for path, (score, commits, _, best) in votes.items()
        }
        self._cochanged(result, exists)
        return result

    def _cochanged(self, votes: dict[str, Vote], exists: set[str] | dict[str, int]) -> None:
        """Files that often changed in the same small commits as the strongest matches: a weak vote each."""
        strongest = sorted(votes.items(), key=lambda item: (-item[1].score, item[0]))[:_ANCHORS]
        touching = self.touching
        for anchor, vote in strongest:
            commits = [c for c in touching.get(anchor, ()) if len(self.files[c]) <= _COCHANGE_FILES]
            if not commits:
                continue
            together: dict[str, int] = {}
            for commit in commits:
                for path in self.files[commit]:
                    if path != anchor and path in exists:
                        together[path] = together.get(path, 0) + 1
            for path, shared in together.items():
                score = _COCHANGE * vote.score * shared / len(commits)
                current = votes.get(path)
                if current is None:
                    votes[path] = Vote(score, 0, None, anchor)
                elif current.best is not None:
                    votes[path] = Vote(current.score + score, current.commits, current.best)

    @property
    def touching(self) -> dict[str, list[int]]:
        """Current file name -> the commits (mass changes excluded) that touched it, newest first."""
        if self._touching is None:
            touching: dict[str, list[int]] = {}
            for commit, files in enumerate(self.files):
                if not self.mass[commit]:
                    for path in files:
                        touching.setdefault(path, []).append(commit)
            self._touching = touching
        return self._touching


def _lines(texts: Iterable[str]) -> str:
    """One normalised line per text (none holds a newline), each padded with spaces, in one translate."""
    joined = " \n ".join(texts)
    return f" {joined.encode('utf-8', 'surrogateescape').translate(TABLE).decode('ascii')} "


def _starts_of(text: str) -> list[int]:
    starts = [0]
    at = text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _lines_with(text: str, starts: list[int], needle: str) -> frozenset[int]:
    found: set[int] = set()
    at = text.find(needle)
    while at >= 0:
        line = bisect.bisect_right(starts, at) - 1
        found.add(line)
        following = line + 1
        if following >= len(starts):
            break
        at = text.find(needle, starts[following])
    return frozenset(found)


def _current_names(commits: tuple[Commit, ...]) -> tuple[list[tuple[str, ...]], list[bool]]:
    """Per commit (newest first), the files it touched under the name they have at the newest commit, and
    whether it is a mass change. Walking back in time, a rename maps the old name to the current one."""
    current: dict[str, str] = {}  # older name -> name at HEAD
    files: list[tuple[str, ...]] = []
    mass: list[bool] = []
    for commit in commits:
        names = []
        for change in commit.changes:
            name = current.get(change.path, change.path)
            if change.status == "R":
                current[change.old] = name
            names.append(name)
        touched = len(commit.changes)
        mass.append(touched > MASS_CHANGE or (touched > _FORMATTING_FILES and bool(_FORMATTING.search(commit.subject))))
        files.append(tuple(dict.fromkeys(names)))
    return files, mass


async def read_history(root: Path, previous: History | None = None, limit: int = LIMIT) -> History:
    """The history of the worktree's HEAD; only the commits since `previous.head` when HEAD moved forward
    from it. An empty history when there is no commit yet."""
    try:
        head = (await git("rev-parse", "--verify", "-q", "HEAD^{commit}", cwd=root)).stdout.strip()
    except GitError:
        return History.empty()
    return await history_at(root, head, previous, limit)


async def history_at(root: Path, head: str, previous: History | None = None, limit: int = LIMIT) -> History:
    if previous is not None and previous.head == head:
        return previous
    since = (
        previous.head
        if previous is not None and previous.head and await _is_ancestor(root, previous.head, head)
        else None
    )
    revisions = [head, f"^{since}"] if since else [head]
    try:
        out = (
            await git("log", f"-n{limit}", "--no-merges", "-M", _FORMAT, "--name-status", "-z", *revisions,
                      "--", cwd=root)
        ).stdout  # fmt: skip
    except GitError:
        return History.empty(head)
    commits = await asyncio.to_thread(parse_log, out)
    if since and previous is not None:
        commits = (commits + previous.commits)[:limit]
    return await asyncio.to_thread(History, head, commits)


async def _is_ancestor(root: Path, older: str, newer: str) -> bool:
    try:
        await git("merge-base", "--is-ancestor", older, newer, cwd=root)
    except GitError:
        return False
    return True


def parse_log(out: str) -> tuple[Commit, ...]:
    """Commits from `git log -z --name-status` in `_FORMAT`."""
    commits = []
    for entry in out.split(_SEPARATOR)[1:]:
        sha, time, subject, body, rest = entry.split("\0", 4)
        fields = rest.lstrip("\0\n").split("\0")
        changes = []
        at = 0
        while at < len(fields) and fields[at]:
            status = fields[at][:1]
            if status in ("R", "C") and at + 2 < len(fields):
                changes.append(Change(status, fields[at + 2], fields[at + 1]))
                at += 3
            elif at + 1 < len(fields):
                changes.append(Change(status, fields[at + 1]))
                at += 2
            else:
                break
        commits.append(Commit(sha, int(time or 0), subject, body, tuple(changes)))
    return tuple(commits)
