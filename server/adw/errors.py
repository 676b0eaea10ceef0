"""Typed errors shared by every layer. Each carries a hint that tells the user what to do next."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from adw.git.locks import Holder


class _Action(BaseModel):
    # `kind` is always sent, so the generated TypeScript type says it is always there.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)
    title: str  # the button's label


class ResumeAction(_Action):
    """Run a failed, cancelled or interrupted workflow on from where it stopped."""

    kind: Literal["resume"] = "resume"
    workflow: str


class ShowLogAction(_Action):
    """Open the log of the task that failed."""

    kind: Literal["showLog"] = "showLog"
    workflow: str
    task: str


class RerunAction(_Action):
    """Start the specs again, deciding what happens to their existing worktrees."""

    kind: Literal["rerun"] = "rerun"
    specs: list[str]
    existing: Literal["resume", "again", "replace"]


# What an editor may offer as buttons on a failure's message; the language server sends them in the JSON-RPC
# error's `data.actions` and the extension maps each kind to one of its commands.
Action = Annotated[ResumeAction | ShowLogAction | RerunAction, Field(discriminator="kind")]


class AdwError(Exception):
    """An error a user can act on: `message` says what happened, `hint` what to do about it on the command line,
    `editor_hint` the same in an editor's words (commands and lenses, no flags) when the two differ, `actions`
    the next steps an editor can offer as buttons."""

    def __init__(self, message: str, hint: str = "", editor_hint: str = "", actions: Sequence[Action] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self._editor_hint = editor_hint
        self.actions = list(actions)

    @property
    def editor_hint(self) -> str:
        # Read when shown: a subclass may set `hint` after __init__ (GitLockError).
        return self._editor_hint or self.hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class NotARepositoryError(AdwError):
    pass


class ConfigError(AdwError):
    pass


class PathOutsideError(AdwError):
    """A path that would leave the repository or worktree it belongs to."""


class InvalidNameError(AdwError):
    pass


class WorktreeError(AdwError):
    pass


class UnsafeOperationError(AdwError):
    """Refused because it would lose work; the hint names the explicit way to proceed."""


class CheckpointError(AdwError):
    pass


class GitError(AdwError):
    """A git command failed. Carries git's own message, the command and its exit status."""

    def __init__(self, args: list[str], returncode: int, stderr: str, stdout: str = "", hint: str = "") -> None:
        self.argv = args
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.stdout = stdout
        detail = self.stderr or stdout.strip() or f"exit status {returncode}"
        super().__init__(f"`{' '.join(args)}` failed: {detail}", hint)


class GitTimeoutError(GitError):
    pass


class GitLockError(GitError):
    """A git lock file stayed in the way after the retries: says which file, who holds it, what to do."""

    def __init__(self, args: list[str], returncode: int, stderr: str, lock: Path, holders: list[Holder]) -> None:
        super().__init__(args, returncode, stderr)
        self.lock = lock
        if holders:
            who = "; ".join(f"process {h.pid} ({h.command[:120]})" for h in holders)
            self.message = f"{lock} is held by {who}"
            self.hint = f"wait for it to finish, or stop it if it is stuck (`kill {holders[0].pid}`), then try again"
        else:
            self.message = f"{lock} was left behind by a git process that stopped mid-write; no process holds it"
            self.hint = f"nothing will remove it by itself: delete it (`rm '{lock}'`), then try again"
        self.args = (str(self),)
