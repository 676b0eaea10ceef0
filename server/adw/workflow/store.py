"""Persistence in SQLite (WAL) at `<git-common-dir>/adw/state.db`: shared by every worktree, never committed.

Several ADW processes may use one database at once (an `adw sdlc` running, `adw status --watch` reading,
`adw cancel` asking); WAL lets readers go on while one writes, and the busy timeout queues writers.
Each workflow row names its owner process (PID and start time), so a restart can tell a crashed run from a
live one in another terminal.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from adw.git.locks import Owner, process_matches
from adw.git.refs import ADW_DIR, STATE_DB
from adw.workflow.events import BaseEvent, Event, OutputLine
from adw.workflow.models import Attempt, Task, TaskState, Workflow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,
    owner_pid INTEGER, owner_started REAL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    workflow_id TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, state TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (workflow_id, id));
CREATE TABLE IF NOT EXISTS attempts (
    workflow_id TEXT NOT NULL, task_id TEXT NOT NULL, number INTEGER NOT NULL, state TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (workflow_id, task_id, number));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, workflow_id TEXT NOT NULL, task_id TEXT, type TEXT NOT NULL,
    time REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_task ON events (workflow_id, task_id, seq);
CREATE TABLE IF NOT EXISTS processes (
    pid INTEGER NOT NULL, create_time REAL NOT NULL, workflow_id TEXT NOT NULL, task_id TEXT NOT NULL,
    owner_pid INTEGER NOT NULL, owner_started REAL NOT NULL, PRIMARY KEY (pid, create_time));
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT, workflow_id TEXT NOT NULL, task_id TEXT, created_at REAL NOT NULL);
"""

# Output kept per task attempt; past it one marker says how much was left out (the live stream has it all).
MAX_STORED_OUTPUT = 1024 * 1024
_EVENT = TypeAdapter(Event)


@dataclass(frozen=True, slots=True)
class AgentProcess:
    pid: int
    create_time: float
    workflow_id: str
    task_id: str


class Store:
    def __init__(self, path: Path, owner: Owner | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.owner = owner or Owner.me()
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[str, str | None, str, float, str]] = []
        self._output_bytes: dict[tuple[str, str | None], int] = {}

    @classmethod
    def for_common_dir(cls, common_dir: Path) -> Store:
        return cls(common_dir / ADW_DIR / STATE_DB)

    def close(self) -> None:
        self.flush()
        self._db.close()

    # -- workflows -------------------------------------------------------------------------------------------

    def save(self, workflow: Workflow, task: Task | None = None) -> None:
        """Write the workflow with all its tasks, or with just `task` when only that one changed, plus the
        buffered events, in one transaction."""
        rows: list[tuple[str, str, int, str, str]] = []
        attempts: list[tuple[str, str, int, str, str]] = []
        changed = [(i, t) for i, t in enumerate(workflow.tasks) if task is None or t is task]
        for position, task in changed:
            rows.append(
                (
                    workflow.id,
                    task.id,
                    position,
                    task.state.value,
                    task.model_dump_json(exclude={"attempts", "usage"}),
                )
            )
            attempts.extend(
                (workflow.id, task.id, a.number, a.state.value, a.model_dump_json()) for a in task.attempts
            )
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO workflows VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    workflow.id,
                    workflow.name,
                    workflow.state.value,
                    workflow.created_at,
                    self.owner.pid,
                    self.owner.started,
                    workflow.model_dump_json(exclude={"tasks", "usage"}),
                ),
            )
            db.executemany("INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?)", attempts)
            self._write_events(db)

    def load(self, workflow_id: str) -> Workflow | None:
        row = self._db.execute("SELECT id FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is None:  # a unique prefix is enough, as with git's abbreviated hashes
            rows = self._db.execute(
                "SELECT id FROM workflows WHERE id LIKE ? ESCAPE '\\'", (_like_prefix(workflow_id),)
            ).fetchall()
            if len(rows) != 1:
                return None
            row = rows[0]
        return self._load(row[0])

    def recent(self, limit: int = 50) -> list[Workflow]:
        ids = self._db.execute(
            "SELECT id FROM workflows ORDER BY created_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [wf for (wid,) in ids if (wf := self._load(wid)) is not None]

    def latest_in_worktree(self, worktree: str, kind: str) -> Workflow | None:
        """The newest workflow of `kind` (e.g. "sdlc") that ran in the worktree named `worktree`."""
        row = self._db.execute(
            "SELECT id FROM workflows WHERE json_extract(data, '$.worktree') = ? AND json_extract(data, '$.kind') = ?"
            " ORDER BY created_at DESC LIMIT 1",
            (worktree, kind),
        ).fetchone()
        return self._load(row[0]) if row else None

    def run(self, ident: str) -> list[Workflow]:
        """The workflows started together with the one `ident` names (an id or a unique prefix), or of the run
        whose id `ident` is; [] when it names neither."""
        run_id = ident
        member = "SELECT id FROM workflows WHERE json_extract(data, '$.run_id') = ?"
        if not self._db.execute(member, (ident,)).fetchone():
            workflow = self.load(ident)
            if workflow is None:
                return []
            if workflow.run_id is None:  # stored before runs were kept: a run of its own
                return [workflow]
            run_id = workflow.run_id
        ids = self._db.execute(member + " ORDER BY created_at", (run_id,)).fetchall()
        return [wf for (wid,) in ids if (wf := self._load(wid)) is not None]

    def best_of(self, ident: str) -> list[Workflow]:
        """The candidates of a best-of-N run, by number, given its group id or a candidate's workflow id (or a
        unique prefix of either); [] when `ident` names no such run."""
        group = "json_extract(data, '$.best_of.group')"
        where = f"SELECT DISTINCT {group} FROM workflows WHERE {group} IS NOT NULL AND "
        groups = self._db.execute(where + f"({group} = ?1 OR id = ?1)", (ident,)).fetchall() or self._db.execute(
            where + f"({group} LIKE ?1 ESCAPE '\\' OR id LIKE ?1 ESCAPE '\\')", (_like_prefix(ident),)
        ).fetchall()
        if len(groups) != 1:
            return []
        ids = self._db.execute(f"SELECT id FROM workflows WHERE {group} = ?", (groups[0][0],)).fetchall()
        found = [wf for (wid,) in ids if (wf := self._load(wid)) is not None]
        return sorted(found, key=lambda wf: wf.best_of.number if wf.best_of else 0)

    def _load(self, workflow_id: str) -> Workflow | None:
        row = self._db.execute("SELECT data FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is None:
            return None
        workflow = Workflow.model_validate_json(row[0])
        attempts: dict[str, list[Attempt]] = {}
        for task_id, data in self._db.execute(
            "SELECT task_id, data FROM attempts WHERE workflow_id = ? ORDER BY number", (workflow_id,)
        ):
            attempts.setdefault(task_id, []).append(Attempt.model_validate_json(data))
        for (data,) in self._db.execute(
            "SELECT data FROM tasks WHERE workflow_id = ? ORDER BY position", (workflow_id,)
        ):
            task = Task.model_validate_json(data)
            task.attempts = attempts.get(task.id, [])
            workflow.tasks.append(task)
        return workflow

    def owner_of(self, workflow_id: str) -> Owner | None:
        row = self._db.execute(
            "SELECT owner_pid, owner_started FROM workflows WHERE id = ?", (workflow_id,)
        ).fetchone()
        return Owner(row[0], row[1]) if row and row[0] is not None else None

    def orphaned(self) -> list[Workflow]:
        """Workflows still marked running whose owning process is gone: a crash or a kill."""
        rows = self._db.execute(
            "SELECT id, owner_pid, owner_started FROM workflows WHERE state IN (?, ?)",
            (TaskState.RUNNING.value, TaskState.PENDING.value),
        ).fetchall()
        return [
            wf for wid, pid, started in rows if not process_matches(pid, started) and (wf := self._load(wid))
        ]

    # -- events ----------------------------------------------------------------------------------------------

    def record_event(self, event: BaseEvent) -> None:
        """Buffer an event; it is written with the next `save` or `flush`."""
        if isinstance(event, OutputLine):
            key = (event.workflow_id, event.task_id)
            used = self._output_bytes.get(key, 0)
            if used > MAX_STORED_OUTPUT:
                return
            used += len(event.text) + 1
            self._output_bytes[key] = used
            if used > MAX_STORED_OUTPUT:
                event = event.model_copy(
                    update={"text": f"[output past {MAX_STORED_OUTPUT} bytes not stored]"}
                )
        self._pending.append(
            (event.workflow_id, event.task_id, event.type, event.time, event.model_dump_json())
        )

    def flush(self) -> None:
        if self._pending:
            with self._transaction() as db:
                self._write_events(db)

    def reset_output_budget(self, workflow_id: str, task_id: str) -> None:
        self._output_bytes.pop((workflow_id, task_id), None)

    def events(self, workflow_id: str, task_id: str | None = None, after: int = 0) -> list[BaseEvent]:
        query = "SELECT seq, data FROM events WHERE workflow_id = ? AND seq > ?"
        params: list[Any] = [workflow_id, after]
        if task_id is not None:
            query += " AND task_id = ?"
            params.append(task_id)
        result: list[BaseEvent] = []
        for seq, data in self._db.execute(query + " ORDER BY seq", params):
            event: BaseEvent = _EVENT.validate_json(data)
            event.seq = seq
            result.append(event)
        return result

    def _write_events(self, db: sqlite3.Connection) -> None:
        if self._pending:
            db.executemany(
                "INSERT INTO events (workflow_id, task_id, type, time, data) VALUES (?, ?, ?, ?, ?)",
                self._pending,
            )
            self._pending = []

    # -- agent processes -------------------------------------------------------------------------------------

    def add_process(self, pid: int, create_time: float, workflow_id: str, task_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO processes VALUES (?, ?, ?, ?, ?, ?)",
                (pid, create_time, workflow_id, task_id, self.owner.pid, self.owner.started),
            )

    def remove_process(self, pid: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM processes WHERE pid = ? AND owner_pid = ?", (pid, self.owner.pid))

    def stray_processes(self, workflow_id: str | None = None) -> list[AgentProcess]:
        """Agent processes recorded by owners that are gone. Their leader may have exited since, and what it
        started still be running: the caller looks for the whole tree, then forgets the record."""
        rows = self._db.execute("SELECT * FROM processes").fetchall()
        return [
            AgentProcess(pid, create_time, wid, task_id)
            for pid, create_time, wid, task_id, owner_pid, owner_started in rows
            if (workflow_id is None or wid == workflow_id) and not process_matches(owner_pid, owner_started)
        ]

    def forget_processes(self, processes: Iterable[AgentProcess]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM processes WHERE pid = ? AND create_time = ?",
                [(p.pid, p.create_time) for p in processes],
            )

    # -- requests from other processes -----------------------------------------------------------------------

    def request_cancel(self, workflow_id: str, task_id: str | None = None) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO requests (workflow_id, task_id, created_at) VALUES (?, ?, ?)",
                (workflow_id, task_id, time.time()),
            )

    def take_cancel_requests(self, workflow_ids: Iterable[str]) -> list[tuple[str, str | None]]:
        ids = list(workflow_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT id, workflow_id, task_id FROM requests WHERE workflow_id IN ({marks})", ids
            ).fetchall()
            db.executemany("DELETE FROM requests WHERE id = ?", [(row[0],) for row in rows])
        return [(row[1], row[2]) for row in rows]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE takes the write lock up front: a busy database waits here, not fails midway."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
