"""The `adw` command line's parser: each command's feature module (`COMMANDS`), which registers its subcommands and
imports what they need at its top. Built only when a command runs in its own process or in the resident ADW, never
for one handed over to the resident ADW (`adw.cli.main`)."""

from __future__ import annotations

import argparse
import importlib

from adw import __version__

# Each command: the feature module that registers it (`register(subparsers)`, which stores its handler as
# `args.handler`), and its line in `adw --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "worktree": ("adw.cli.worktree", "isolated worktrees, one branch each"),
    "checkpoint": ("adw.cli.checkpoint", "snapshot the worktree (or `checkpoint diff A [B]`)"),
    "undo": ("adw.cli.checkpoint", "go back to the latest checkpoint, or the one before"),
    "redo": ("adw.cli.checkpoint", "return to the state before the last undo"),
    "checkpoints": ("adw.cli.checkpoint", "list checkpoints"),
    "sdlc": (
        "adw.cli.workflow",
        "run scout → plan → build → test ‖ review ‖ document → commit for each spec, in parallel",
    ),
    "status": ("adw.cli.runs", "workflows of this repository, or the tasks of one"),
    "cancel": ("adw.cli.runs", "cancel a workflow, or one of its tasks"),
    "resume": ("adw.cli.workflow", "run again what did not succeed; succeeded tasks are kept"),
    "say": ("adw.cli.workflow", "send a follow-up to a task's agent, continuing its session (`say ID [--task T] MSG`)"),
    "logs": ("adw.cli.runs", "the recorded events and output of a workflow (`--follow` streams a task's transcript)"),
    "timeline": ("adw.cli.runs", "who ran when in a run: lanes, slot waits, critical path, speedup (--html, --svg)"),
    "demo": ("adw.cli.workflow", "create a demo repository with three specs and run them in parallel"),
    "compare": ("adw.cli.best_of", "rank the candidates of `adw sdlc SPEC --best-of N`, with the reasons"),
    "pick": ("adw.cli.best_of", "merge one candidate of a best-of-N run and archive the others"),
    "forge": ("adw.cli.forge", "the repository's forge (GitHub, GitLab, Bitbucket) and how ADW logs in to it"),
    "pr": ("adw.cli.forge", "push a finished workflow's branch and open (or update) its draft pull request"),
    "scout": ("adw.cli.scout", "find the files and lines a task is about (no LLM, no network)"),
    "cluster": ("adw.cli.cluster", "the Ray cluster agent phases run on with `--executor ray`: nodes, agent slots"),
    "lsp": ("adw.cli.lsp", "run the language server (stdio by default)"),
    "daemon": ("adw.cli.resident", "a resident ADW for this repository, so quick commands answer faster"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for `command` with its feature module's subcommands; for any other word, or none, every
    command as a one-line entry, which is all `adw --help` and argparse's "invalid choice" need."""
    parser = argparse.ArgumentParser(
        prog="adw", description="AI Developer Workflows: parallel coding agents in isolated git worktrees."
    )
    parser.add_argument("--version", action="version", version=f"adw {__version__}")
    parser.add_argument("-C", dest="cwd", default=".", metavar="PATH", help="run as if started in PATH")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command in COMMANDS:
        importlib.import_module(COMMANDS[command][0]).register(subparsers)
    else:
        for name, (_, summary) in COMMANDS.items():
            subparsers.add_parser(name, help=summary)
    return parser
