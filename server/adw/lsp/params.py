"""Typed arguments of the `adw.server.*` commands and the custom requests: one model per command.

The wire stays as docs/PROTOCOL.md describes it: `arguments` are positional, in the order of the model's fields
(`null` or `""` means "not given"), or a single object of named arguments. A value of the wrong type is refused
with a message naming the argument (InvalidParams). The extension's `ServerCommands` type map
(extension/src/protocol.ts) is checked against `command_schemas()` by tests/lsp/test_lsp_params.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from adw.config import MAX_AGENTS
from adw.errors import AdwError

_SEE = "see docs/PROTOCOL.md for its arguments"


class ArgumentError(AdwError):
    """A missing, extra or mistyped argument of a command or request (InvalidParams)."""


def _no_nul(value: object) -> object:
    # A NUL can name no file or ref: refuse it here instead of failing deep in os or git.
    if isinstance(value, str) and "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _whole_number(value: object) -> object:
    return int(value) if isinstance(value, str) and value.isdigit() else value


Text = Annotated[str, BeforeValidator(_no_nul)]
Paths = Annotated[list[Text], BeforeValidator(_one_or_many), Field(min_length=1)]
WholeNumber = Annotated[int, BeforeValidator(_whole_number), Field(ge=0)]

COMMANDS: dict[str, type[Params]] = {}


class Params(BaseModel):
    """Arguments of one command, named by the class: `MergePreview` is `adw.server.mergePreview`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    command: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.command = cls.__name__[0].lower() + cls.__name__[1:]
        COMMANDS[cls.command] = cls

    @classmethod
    def from_wire(cls, values: Sequence[object]) -> Self:
        """Positional arguments, or one object of named ones; `null` and `""` are "not given"."""
        names = list(cls.model_fields)
        if len(values) == 1 and isinstance(values[0], dict):
            given: dict[str, object] = dict(values[0])
        elif len(values) > len(names):
            raise ArgumentError(
                f"{cls.command} takes at most {len(names)} argument(s) ({', '.join(names)}), got {len(values)}",
                _SEE,
            )
        else:
            given = dict(zip(names, values, strict=False))
        given = {name: value for name, value in given.items() if value is not None and value != ""}
        return validate(cls, given, cls.command)


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: object, what: str) -> M:
    """`data` as `model`, or an ArgumentError naming the first wrong argument."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ArgumentError(f"{what}: {describe(exc.errors()[0])}", _SEE) from None


P = TypeVar("P", bound=Params)


def describe(error: ErrorDetails) -> str:
    """One pydantic error in words that name the argument: "`strategy` should be 'merge', … (got 'x')"."""
    where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "arguments"
    if error["type"] == "missing":
        return f"needs `{where}`"
    if error["type"] == "extra_forbidden":
        return f"has no argument `{where}`"
    if error["type"] in ("model_type", "dict_type"):
        return f"`{where}` should be an object (got {repr(error.get('input'))[:60]})"
    message = error["msg"].removeprefix("Value error, ")
    subject, _, rest = message.partition(" ")
    # pydantic says "Input should be …" or "Value should have …": the argument's name says it better
    message = f"`{where}` {rest if subject in ('Input', 'Value', 'List') else message}"
    given = error.get("input")
    return message if isinstance(given, dict) else f"{message} (got {repr(given)[:60]})"


class SdlcOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)
    max_agents: int | None = Field(default=None, alias="maxAgents", ge=1, le=MAX_AGENTS)
    # Where agent phases run (the editor's adw.executor): as [tool.adw] says, or local, or a Ray cluster at
    # `address` (the editor's adw.rayAddress; default: [tool.adw] address).
    executor: Literal["config", "local", "ray"] = "config"
    address: Text | None = None
    # When a spec's worktree is already there: refuse (answering the choices), ask the user (a
    # showMessageRequest: the spec lens does this), resume its workflow, run it again in a new suffixed
    # worktree, or archive and remove the worktree, then run it again.
    existing: Literal["refuse", "ask", "resume", "again", "replace"] = "refuse"


class StartSdlc(Params):
    specs: Paths
    options: SdlcOptions = SdlcOptions()


class Scout(Params):
    task: Text
    worktree: Text | None = None
    top: WholeNumber | None = None


class ListWorktrees(Params):
    pass


class CreateWorktree(Params):
    name: Text
    base: Text | None = None
    repository: Text | None = None  # a path in one of the workspace's repositories; default: the first folder's


class MergePreview(Params):
    name: Text
    into: Text | None = None
    repository: Text | None = None  # a path in the worktree's repository; default: the first that has `name`


class Merge(Params):
    name: Text
    strategy: Literal["merge", "squash", "rebase"] = "merge"
    into: Text | None = None
    repository: Text | None = None  # as for MergePreview


class RemoveWorktree(Params):
    name: Text
    archive: bool = False
    force: bool = False
    repository: Text | None = None  # as for MergePreview


class Checkpoint(Params):
    worktree: Text | None = None
    message: Text = ""


class Undo(Params):
    worktree: Text | None = None
    file: Text | None = None
    to: WholeNumber | None = None


class Redo(Params):
    worktree: Text | None = None


class ListCheckpoints(Params):
    worktree: Text | None = None
    file: Text | None = None


class CheckpointChanges(Params):
    """The files that differ from checkpoint `number` to checkpoint `to` (default: the current files)."""

    worktree: Text | None = None
    number: WholeNumber
    to: WholeNumber | None = None


class CheckpointFile(Params):
    """One file's content at checkpoint `number` (the Checkpoints view's diffs read both sides through it)."""

    worktree: Text | None = None
    number: WholeNumber
    file: Text


class Cancel(Params):
    workflow: Text
    task: Text | None = None


class Resume(Params):
    workflow: Text


class FollowUpLocation(BaseModel):
    """What a follow-up is about: a file (a path, relative to the workflow's worktree, or a URI), its lines
    (1-based, inclusive) and the code selected there."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)
    file: Text
    start_line: int = Field(alias="startLine", ge=1)
    end_line: int = Field(alias="endLine", ge=1)
    selected_code: str = Field(default="", alias="selectedCode")


class FollowUp(Params):
    workflow: Text
    message: Text
    task: Text | None = None  # default: the workflow's last task whose agent left a session
    location: FollowUpLocation | None = None


class Status(Params):
    workflow: Text | None = None


class Timeline(Params):
    id: Text  # a run id, or the id of any workflow of the run


class Compare(Params):
    id: Text  # a best-of id, or one of its candidates' workflow ids


class Pick(Params):
    id: Text
    number: WholeNumber
    strategy: Literal["merge", "squash", "rebase"] = "merge"
    pr: bool = False  # open (or update) its draft pull request instead of merging it here


class SdlcFromIssue(Params):
    issue: Text  # its number (`123`, `#123`) or its URL on the repository's forge
    pr: bool = False  # open a draft pull request when the workflow is done
    options: SdlcOptions = SdlcOptions()
    repository: Text | None = None  # a path in one of the workspace's repositories; default: the first folder's


class CreatePullRequest(Params):
    workflow: Text
    base: Text | None = None


class PullRequestsRequest(BaseModel):
    """Parameters of the `adw/pullRequests` request (an object, or null; unknown keys are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    refresh: bool = False  # ask the forge now, even about a branch asked about less than a minute ago
    repository: Text | None = None  # a path in one of the workspace's repositories; default: the first folder's


class CheckpointsRequest(BaseModel):
    """Parameters of the `adw/checkpoints` request (an object, or null; unknown keys are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    worktree: Text | None = None
    file: Text | None = None


def command_schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema of every command's arguments, by command name."""
    return {name: model.model_json_schema(by_alias=True) for name, model in sorted(COMMANDS.items())}
