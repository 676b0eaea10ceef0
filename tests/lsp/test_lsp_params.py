"""The typed command arguments: one model per registered command, positional and named forms alike, and the
extension's ServerCommands (protocol.generated.ts) and docs/PROTOCOL.md in step with the models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adw.lsp import create_server
from adw.lsp.params import COMMANDS, ArgumentError, Merge, StartSdlc, Undo
from adw.lsp.server import COMMAND_PREFIX
from adw.lsp.typescript import GENERATED_TS, typescript

ROOT = Path(__file__).resolve().parents[2]


def test_every_registered_command_has_a_model() -> None:
    registered = {name for name in create_server().protocol.fm.commands if name.startswith(COMMAND_PREFIX)}
    assert registered == {COMMAND_PREFIX + name for name in COMMANDS}


def test_the_extensions_command_types_are_generated_from_the_models() -> None:
    written = (ROOT / GENERATED_TS).read_text(encoding="utf-8")
    assert written == typescript(), f"run: python -m adw.lsp.typescript > {GENERATED_TS}"


def test_protocol_doc_lists_each_commands_arguments() -> None:
    doc = (ROOT / "docs/PROTOCOL.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^### `adw\.server\.(\w+)\(([^)]*)\)`", doc, flags=re.MULTILINE))
    assert set(documented) == set(COMMANDS)
    for name, model in COMMANDS.items():
        required = {field for field, info in model.model_fields.items() if info.is_required()}
        expected = [field if field in required else f"{field}?" for field in model.model_fields]
        assert [arg.strip() for arg in documented[name].split(",") if arg.strip()] == expected, name


def test_positional_and_named_arguments_fill_the_same_model() -> None:
    assert Merge.from_wire(["feat", "squash"]) == Merge.from_wire([{"name": "feat", "strategy": "squash"}])
    assert Undo.from_wire([None, "", 3]) == Undo.from_wire([{"to": "3"}]) == Undo(to=3)
    assert StartSdlc.from_wire(["specs/a.md"]).specs == ["specs/a.md"]  # one spec may be a string
    assert StartSdlc.from_wire([["a.md"], {"maxAgents": 2}]).options.max_agents == 2


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (Merge, ["feat", "octopus"], "merge: `strategy` should be 'merge', 'squash' or 'rebase' (got 'octopus')"),
        (Merge, [{"name": "feat", "into": 1}], "merge: `into` should be a valid string (got 1)"),
        (Merge, [{"name": "feat", "onto": "main"}], "merge: has no argument `onto`"),
        (Undo, [None, None, -1], "undo: `to` should be greater than or equal to 0 (got -1)"),
        (Undo, ["a", "b", 1, 2], "undo takes at most 3 argument(s) (worktree, file, to), got 4"),
        (StartSdlc, [[]], "startSdlc: `specs` should have at least 1 item"),
        (StartSdlc, [["a.md"], {"maxAgents": -5}], "startSdlc: `options.maxAgents` should be greater than or equal"),
        (StartSdlc, [["a.md"], {"maxAgents": True}], "startSdlc: `options.maxAgents` should be a valid integer"),
        (StartSdlc, [["a.md"], {"maxAgents": 9}], "startSdlc: `options.maxAgents` should be less than or equal to 8"),
    ],
)
def test_a_wrong_argument_is_named(model: type[Merge | Undo | StartSdlc], values: list[object], message: str) -> None:
    with pytest.raises(ArgumentError) as refused:
        model.from_wire(values)
    assert refused.value.message.startswith(message)
    assert refused.value.hint
