"""The command line imports only the feature module of the command it runs (issue #14, point 1)."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from adw.cli import FEATURES, _command, build_parser


@pytest.mark.parametrize("module", sorted(FEATURES))
def test_each_feature_registers_exactly_the_commands_listed_for_it(module: str) -> None:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="command")
    importlib.import_module(module).register(subparsers)
    assert tuple(subparsers.choices) == FEATURES[module]


def test_the_command_is_found_past_options() -> None:
    assert _command(["-C", "worktree", "checkpoint", "-m", "x"]) == "checkpoint"
    assert _command(["--json"]) is None and _command([]) is None
    assert build_parser("undo").parse_args(["redo"]).command == "redo"
    assert build_parser(None).parse_args(["status"]).command == "status"


def test_an_unknown_command_gets_the_full_parser_and_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser("undo").parse_args(["status"])  # only the checkpoint commands were registered
    capsys.readouterr()
    with pytest.raises(SystemExit):
        build_parser("nonsense").parse_args(["nonsense"])
    err = capsys.readouterr().err
    assert "invalid choice: 'nonsense'" in err and "'worktree'" in err  # every command is offered


def test_a_command_imports_only_its_own_feature_module() -> None:
    probe = ("import sys; from adw.cli import build_parser; build_parser('worktree');"
             "print(sorted(m for m in sys.modules if m.startswith('adw.cli.')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['adw.cli.output', 'adw.cli.worktree']"


def test_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "adw", "--help"], capture_output=True, text=True, check=True).stdout
    for commands in FEATURES.values():
        assert all(command in out for command in commands)
