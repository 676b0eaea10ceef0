"""Preflight of the configured agent CLIs, against the fakes: every problem at once, with what to do."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from adw.agents import preflight as preflight_module
from adw.agents.preflight import preflight
from adw.cli import main
from adw.config import PhaseConfig
from adw.errors import AdwError
from tests.conftest import MakeRepo, run_git
from tests.fakes import install_fakes

KEYS = ("ANTHROPIC_API_KEY", "CODEX_API_KEY", "OPENAI_API_KEY")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    return install_fakes(tmp_path / "bin", "claude", "codex", "aider")


def phase(agent: str, bin_dir: Path, **fields: object) -> PhaseConfig:
    env = {"PATH": str(bin_dir), **fields.pop("env", {})}  # type: ignore[dict-item]
    return PhaseConfig.model_validate({"agent": agent, "env": env, **fields})


async def problems_of(phases: dict[str, PhaseConfig], root: Path | None = None) -> list[str]:
    with pytest.raises(AdwError) as raised:
        await preflight(phases, root)
    assert raised.value.hint  # says where to go next
    return [line[2:] for line in raised.value.message.splitlines() if line.startswith("- ")]


async def test_installed_logged_in_agents_pass(bin_dir: Path) -> None:
    await preflight(
        {
            "plan": phase("claude", bin_dir, env={"ANTHROPIC_API_KEY": "sk-ant-test"}),
            "build": phase("codex", bin_dir, env={"FAKE_CODEX_LOGGED_IN": "1"}),
            "review": phase("codex", bin_dir, env={"CODEX_API_KEY": "sk-test"}),  # exec uses it; status does not
            "document": phase("aider", bin_dir, model="sonnet", env={"ANTHROPIC_API_KEY": "sk-ant-test"}),
            "test": PhaseConfig(agent="command", command=[sys.executable, "-c", "pass"]),
        }
    )


async def test_every_problem_is_listed_at_once_with_what_to_do(bin_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = await problems_of(
        {
            "plan": phase("claude", bin_dir),
            "build": phase("codex", bin_dir),
            "test": phase("aider", bin_dir),
            "review": phase("claude", empty),
            "document": PhaseConfig(agent="command", command=["no-such-tool-xyz", "{task}"]),
        }
    )
    assert problems == [
        "phases.document.command: `no-such-tool-xyz` is not installed or not on PATH",
        "phases.plan (claude): Claude Code is not logged in: run `claude auth login`, or set ANTHROPIC_API_KEY",
        "phases.build (codex): Codex is not logged in: run `codex login`, or set CODEX_API_KEY",
        'phases.test (aider): aider needs a model: set phases.test.model (e.g. "sonnet" or "gpt-4o")',
        "phases.review (claude): `claude` is not installed or not on PATH: install Claude Code "
        "(`npm install -g @anthropic-ai/claude-code`) or pick another agent",
    ]


async def test_phases_sharing_a_cli_are_checked_once_and_named_together(bin_dir: Path) -> None:
    problems = await problems_of({"plan": phase("claude", bin_dir), "build": phase("claude", bin_dir)})
    assert problems == [
        "phases.plan, phases.build (claude): Claude Code is not logged in: run `claude auth login`, "
        "or set ANTHROPIC_API_KEY"
    ]


async def test_an_old_version_is_refused_with_the_upgrade_command(bin_dir: Path) -> None:
    config = phase("claude", bin_dir, env={"ANTHROPIC_API_KEY": "k", "FAKE_CLAUDE_VERSION": "2.0.76"})
    problems = await problems_of({"build": config})
    assert problems == [
        "phases.build (claude): Claude Code 2.0.76 is older than 2.1.0, the oldest ADW supports: run `claude update`"
    ]


async def test_aider_needs_the_key_of_its_models_provider(bin_dir: Path, tmp_path: Path) -> None:
    problems = await problems_of({"build": phase("aider", bin_dir, model="gpt-4o")})
    assert problems == [
        "phases.build (aider): model 'gpt-4o' needs OPENAI_API_KEY: set it in the environment or in phases.build.env"
    ]
    await preflight({"build": phase("aider", bin_dir, model="ollama/llama3")})  # a local model needs no key
    await preflight({"build": phase("aider", bin_dir, model="gpt-4o", env={"OPENAI_API_KEY": "sk-test"})})
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\n")  # aider reads it from the repository's root
    await preflight({"build": phase("aider", bin_dir, model="gpt-4o")}, repo)


async def test_a_cli_that_hangs_is_a_problem_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "hanging"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    claude.chmod(0o755)
    monkeypatch.setattr(preflight_module, "CHECK_TIMEOUT", 0.3)
    problems = await problems_of({"build": phase("claude", bin_dir)})
    assert problems == ["phases.build (claude): `claude --version` did not answer within 0.3 s"]


async def test_built_in_agents_need_nothing() -> None:
    await preflight({"plan": PhaseConfig(agent="spec-apply"), "test": PhaseConfig(agent="pytest")})


def test_adw_sdlc_refuses_to_start_before_anything_runs(
    make_repo: MakeRepo, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = f'[phases.build]\nagent = "claude"\nenv = {{ PATH = {json.dumps(str(bin_dir))} }}\n'
    project = make_repo({"README.md": "# demo\n", ".adw.toml": config, "specs/add.md": "# Add\nadd()\n"})
    assert main(["-C", str(project), "sdlc", "specs/add.md"]) == 2
    err = capsys.readouterr().err
    assert "cannot start: 1 problem(s)" in err and "phases.build (claude): Claude Code is not logged in" in err
    assert "hint:" in err and "Traceback" not in err
    assert run_git(project, "worktree", "list").count("\n") == 1  # no worktree was made
    assert main(["-C", str(project), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"workflows": []}  # no workflow was recorded
