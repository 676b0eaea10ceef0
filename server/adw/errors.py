"""Typed errors shared by every layer. Each carries a hint that tells the user what to do next."""

from __future__ import annotations


class AdwError(Exception):
    """An error a user can act on: `message` says what happened, `hint` what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

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
