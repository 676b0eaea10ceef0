"""`aider`: `aider --model MODEL --message-file FILE --yes-always --no-auto-commits …`; text output only.

Cost comes from lines like `Tokens: 3.0k sent, 42 received. Cost: $0.0063 message, $0.0063 session.`; edits
from `Applied edit to PATH`. Auto-commits are off so that the workflow makes the one aggregated commit.

aider exits 0 even when every API call failed, so the outcome is judged from its output: a `litellm.…Error`
line after the last answered request fails the task. Its prompt, chat and input history go to a temporary
folder, not into the worktree; `--no-gitignore` keeps it from editing `.gitignore`, `--no-analytics` from
asking (`--analytics-disable` would write to the home folder), and the repo-map cache it leaves in the
worktree is removed unless it was already there.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from adw.agents.claude import prompt_for
from adw.agents.headless import CliAgent
from adw.agents.process import ProcessOutcome, Stream
from adw.config import AgentsConfig
from adw.errors import AdwError
from adw.git.refs import AGENT_SESSIONS_DIR
from adw.git.repo import Repo
from adw.workflow.agent import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Task, Usage, Workflow

_TOKENS = re.compile(
    r"Tokens: (?P<sent>[\d.,]+)(?P<sk>[kKmM]?) sent.*?(?P<received>[\d.,]+)(?P<rk>[kKmM]?) received\."
    r"(?: Cost: \$(?P<message>[\d.]+) message, \$(?P<session>[\d.]+) session\.)?"
)
_APPLIED = re.compile(r"^Applied edit to (?P<path>.+?)\s*$")
_API_ERROR = re.compile(r"^litellm\.(?P<kind>\w+Error):\s*(?P<message>.*)$")
# aider retries these itself for about a minute before it gives up, so ADW does not retry them again; the
# others (a bad key, an unknown model) need the user.
_TRANSIENT = {"APIConnectionError", "APIError", "InternalServerError", "ServiceUnavailableError", "RateLimitError"}
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}
TAGS_CACHE = re.compile(r"^\.aider\.tags\.cache\.v\d+$")


def parse_tokens(number: str, suffix: str) -> int:
    return round(float(number.replace(",", "")) * _SCALE[suffix.lower()])


class AiderAgent(CliAgent):
    install_hint = "install aider (`pip install aider-chat`) or pick another agent"

    def __init__(self, workflow: Workflow, settings: AgentsConfig) -> None:
        super().__init__(workflow, settings)
        self.files: set[str] = set()
        self.tokens = Usage()
        self.api_error: tuple[str, list[str]] | None = None  # (kind, message lines) of the last failed request
        self.reading_error = False  # aider wraps the message and adds its advice on the next lines

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        caches = {path.name for path in worktree.iterdir() if TAGS_CACHE.match(path.name)}
        with tempfile.TemporaryDirectory(prefix="adw-aider-") as folder:
            self.scratch = Path(folder)
            self.history = await self._history_folder(task, worktree)
            prompt = prompt_for(task, self.phase_config(task).prompt, self.placeholders(task, worktree))
            (self.scratch / "message.md").write_text(prompt, encoding="utf-8")
            try:
                return await super().run(task, worktree, events, cancel)
            finally:
                for path in worktree.iterdir():
                    if TAGS_CACHE.match(path.name) and path.name not in caches and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)

    async def _history_folder(self, task: Task, worktree: Path) -> Path:
        """Where aider's chat and input history go: the session a follow-up continues (`--restore-chat-history`),
        kept in the repository's ADW folder, outside the worktree; a temporary one outside a git repository."""
        if resumed := self.resumed_session(task):
            self.session_id = resumed
            folder = Path(resumed)
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        try:
            repo = await Repo.discover(worktree)
        except AdwError:
            return self.scratch
        folder = repo.adw_dir / AGENT_SESSIONS_DIR / self.workflow.id / task.id
        shutil.rmtree(folder, ignore_errors=True)  # a fresh run starts a fresh conversation
        folder.mkdir(parents=True)
        self.session_id = str(folder)
        return folder

    def argv(self, task: Task, worktree: Path) -> list[str]:
        model = self.phase_config(task).model
        restore = ["--restore-chat-history"] if self.resumed_session(task) else []
        return [
            "aider",
            *(["--model", model] if model else []),
            "--message-file",
            str(self.scratch / "message.md"),
            "--yes-always",
            "--no-auto-commits",
            "--no-gitignore",
            "--no-pretty",
            "--no-stream",
            "--no-check-update",
            "--no-show-release-notes",
            "--no-analytics",
            "--input-history-file",
            str(self.history / "input.history"),
            "--chat-history-file",
            str(self.history / "chat.history.md"),
            *restore,
        ]

    def on_line(self, line: str, stream: Stream) -> None:
        super().on_line(line, stream)
        if self.reading_error and self.api_error is not None:
            self.reading_error = bool(line.strip()) and not line.startswith("Retrying")
            if self.reading_error:
                self.api_error[1].append(line.strip())
                return
        if tokens := _TOKENS.search(line):
            self.api_error = None  # a request was answered after any earlier error: aider's retry worked
            # Tokens are per message and add up; the session cost is already a running total.
            self.tokens = self.tokens + Usage(
                input_tokens=parse_tokens(tokens.group("sent"), tokens.group("sk")),
                output_tokens=parse_tokens(tokens.group("received"), tokens.group("rk")),
            )
            session = tokens.group("session")
            cost = float(session) if session else self.events.usage.cost_usd
            self.events.cost(self.tokens.model_copy(update={"cost_usd": cost}))
        elif applied := _APPLIED.match(line):
            self.files.add(applied.group("path"))
            self.events.tool("Edit", applied.group("path"))
        elif error := _API_ERROR.match(line):
            self.api_error, self.reading_error = (error.group("kind"), [error.group("message").strip()]), True

    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult:
        if outcome.returncode != 0:
            failure = self.exit_failure(outcome)
            return failure.model_copy(update={"usage": self.events.usage})
        files = sorted(self.files)
        if self.api_error is not None:
            kind, lines = self.api_error
            message = " ".join(line for line in lines if line)
            hint = (
                "check the connection and the provider's status"
                if kind in _TRANSIENT
                else f"check phases.{task.phase}.model and the provider's API key"
            )
            return AgentResult.failed(
                f"aider's API request failed ({kind}: {message}) although it exited 0: {hint}",
                usage=self.events.usage,
                files_changed=files,
            )
        summary = f"aider edited {len(files)} file(s)" if files else "aider made no edits"
        return AgentResult(status="succeeded", summary=summary, usage=self.events.usage, files_changed=files)
