"""Repository discovery (main, linked, bare, none), paths kept inside the worktree, and configuration errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adw.config import AdwConfig, load_config
from adw.errors import ConfigError, NotARepositoryError, PathOutsideError
from adw.git import repo as repo_module
from adw.git.repo import MAIN_WORKTREE_ID, Repo
from tests.conftest import MakeRepo, age, run_git


@pytest.fixture(autouse=True)
def _ceiling(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A temporary folder must never be found inside some enclosing repository of the machine.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


# ---------------------------------------------------------------- discovery


async def test_discover_from_a_subfolder_finds_the_main_worktree(repo: Path) -> None:
    found = await Repo.discover(repo / "src")
    assert found.root == repo
    assert found.git_dir == repo / ".git"
    assert found.common_dir == repo / ".git"
    assert found.is_main
    assert found.worktree_id == MAIN_WORKTREE_ID
    assert found.adw_dir == repo / ".git" / "adw"


async def test_discover_from_a_file_uses_its_folder(repo: Path) -> None:
    found = await Repo.discover(repo / "src" / "app.py")
    assert found.root == repo


async def test_discover_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    run_git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "side wt"))
    found = await Repo.discover(tmp_path / "side wt")
    assert found.root == tmp_path / "side wt"
    assert found.common_dir == repo / ".git"
    assert not found.is_main
    assert found.git_dir.parent == repo / ".git" / "worktrees"
    assert found.worktree_id == found.git_dir.name != MAIN_WORKTREE_ID
    assert found.private_dir == found.git_dir / "adw"


async def test_unicode_and_spaces_in_the_repository_path(make_repo: MakeRepo) -> None:
    root = make_repo(name="my répo ✓")
    found = await Repo.discover(root)
    assert found.root == root


async def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepositoryError) as info:
        await Repo.discover(plain)
    assert "not inside a git repository" in info.value.message
    assert "git init" in info.value.hint


async def test_a_missing_path_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError):
        await Repo.discover(tmp_path / "missing" / "deeper")


async def test_a_bare_repository_is_refused_with_a_hint(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    run_git(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(NotARepositoryError) as info:
        await Repo.discover(bare)
    assert "bare" in info.value.message
    assert "worktree" in info.value.hint


async def test_the_git_dir_itself_is_refused(repo: Path) -> None:
    with pytest.raises(NotARepositoryError):
        await Repo.discover(repo / ".git")


# ---------------------------------------------------------------- paths


async def test_paths_inside_are_resolved_and_paths_outside_refused(repo: Path, tmp_path: Path) -> None:
    found = await Repo.discover(repo)
    assert found.inside("src/app.py") == repo / "src" / "app.py"
    assert found.inside(str(repo / "README.md")) == repo / "README.md"
    assert found.relpath(repo / "src" / "app.py") == "src/app.py"
    for outside in ("../elsewhere", "src/../../x", "/etc/passwd", str(tmp_path)):
        with pytest.raises(PathOutsideError) as info:
            found.inside(outside)
        assert info.value.hint
    (repo / "escape").symlink_to(tmp_path)
    with pytest.raises(PathOutsideError):
        found.inside("escape/file")


# ---------------------------------------------------------------- configuration


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == AdwConfig()
    assert config.checkpoint.max_untracked_size == 10_000_000
    assert config.worktree.root == "../{repo}.worktrees"


def test_pyproject_without_a_tool_adw_table_gives_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config(tmp_path) == AdwConfig()


def test_pyproject_tool_adw_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.adw.worktree]\nsetup = ["make", "deps"]\n[tool.adw.checkpoint]\nmax_untracked_size = "2MB"\n'
    )
    config = load_config(tmp_path)
    assert config.worktree.setup == ["make", "deps"]
    assert config.checkpoint.max_untracked_size == 2_000_000


def test_adw_toml_is_preferred_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.adw.worktree]\nsetup = ["from-pyproject"]\n')
    (tmp_path / ".adw.toml").write_text('[worktree]\nsetup = ["from-adw-toml"]\n')
    assert load_config(tmp_path).worktree.setup == ["from-adw-toml"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("123", 123), ('"10MB"', 10_000_000), ('"500 kb"', 500_000), ('"1.5g"', 1_500_000_000), ('"7b"', 7)],
)
def test_sizes_accept_bytes_and_units(tmp_path: Path, text: str, value: int) -> None:
    (tmp_path / ".adw.toml").write_text(f"[checkpoint]\nmax_untracked_size = {text}\n")
    assert load_config(tmp_path).checkpoint.max_untracked_size == value


def test_unknown_key_names_the_key_path_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.adw.worktree]\nsetpu = ["make"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "tool.adw.worktree.setpu: unknown key" in info.value.message
    assert str(tmp_path / "pyproject.toml") in info.value.message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[checkpoint]\nmax_untracked_size = \"lots\"\n", "checkpoint.max_untracked_size"),
        ("[checkpoint]\nmax_untracked_size = -1\n", "checkpoint.max_untracked_size"),
        ("[worktree.ports]\nbase = 80\n", "worktree.ports.base"),
        ("[worktree]\nsetup = \"make\"\n", "worktree.setup"),
        ("[bogus]\nx = 1\n", "bogus"),
    ],
)
def test_bad_values_in_adw_toml_name_the_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / ".adw.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert f"{key}:" in info.value.message
    assert str(tmp_path / ".adw.toml") in info.value.message
    assert not info.value.message.split(": ", 1)[1].startswith("tool.adw")


@pytest.mark.parametrize(
    ("file", "text", "key"),
    [
        ("pyproject.toml", '[tool.adw.phases.biuld]\nagent = "claude"\n', "tool.adw.phases.biuld"),
        (".adw.toml", '[phases.lint]\nagent = "ruff"\n', "phases.lint"),
    ],
)
def test_an_unknown_phase_names_the_key_path_the_file_and_the_phases(
    tmp_path: Path, file: str, text: str, key: str
) -> None:
    (tmp_path / file).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert f"{key}: unknown phase; the phases are plan, build, test, review, document" in info.value.message
    assert str(tmp_path / file) in info.value.message


@pytest.mark.parametrize("value", [0, -5, 9])
def test_max_agents_outside_one_to_eight_is_refused(tmp_path: Path, value: int) -> None:
    (tmp_path / ".adw.toml").write_text(f"[agents]\nmax_agents = {value}\n")
    with pytest.raises(ConfigError, match=r"agents\.max_agents: Input should be"):
        load_config(tmp_path)


def test_the_configuration_examples_in_the_docs_are_valid(tmp_path: Path) -> None:
    """Each TOML example of docs/CONFIGURATION.md loads from the file it is written for."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    examples = re.findall(r"```toml\n# (\S+)\n(.*?)```", docs, re.S)
    assert {file for file, _ in examples} == {".adw.toml", "pyproject.toml"}
    for file, text in examples:
        folder = tmp_path / file
        folder.mkdir()
        (folder / file).write_text(text)
        assert load_config(folder) != AdwConfig(), file


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / ".adw.toml").write_text("[worktree\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path / ".adw.toml") in info.value.message
    assert "not valid TOML" in info.value.message


def test_config_is_read_relative_to_the_given_root_only(tmp_path: Path) -> None:
    (tmp_path / ".adw.toml").write_text("[nonsense]\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    assert load_config(sub) == AdwConfig()
    with pytest.raises(ConfigError):
        load_config(tmp_path)


async def test_a_discovery_is_reused_until_git_would_answer_otherwise(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process serving many commands asks git once per folder; a repository created in a subfolder, or a
    worktree moved away and another added at its path, is seen by the next discovery."""
    asked: list[Path] = []
    real_git = repo_module.git

    async def counted(*args: str, cwd: Path, **kwargs: object) -> object:
        asked.append(cwd)
        return await real_git(*args, cwd=cwd, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo_module, "git", counted)
    linked = tmp_path / "linked"
    run_git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    age(tmp_path)
    first = await Repo.discover(repo / "src")
    assert await Repo.discover(repo / "src" / "app.py") == first and len(asked) == 1

    run_git(repo / "src", "init", "-q")
    nested = await Repo.discover(repo / "src")
    assert nested.root == repo / "src" and nested.common_dir == repo / "src" / ".git"

    before = await Repo.discover(linked)
    assert await Repo.discover(linked) == before
    run_git(repo, "worktree", "move", str(linked), str(tmp_path / "moved"))
    run_git(repo, "worktree", "add", "-q", "-b", "other", str(linked))
    after = await Repo.discover(linked)
    assert after.git_dir != before.git_dir
    assert str(after.git_dir) == run_git(linked, "rev-parse", "--absolute-git-dir").strip()


async def test_a_discovery_of_files_changed_just_now_is_not_reused(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written in the last moments may be written again within the same timestamp: its stat proves
    nothing yet, so git is asked again."""
    asked: list[str] = []
    real_git = repo_module.git

    async def counted(*args: str, cwd: Path, **kwargs: object) -> object:
        asked.append(args[0])
        return await real_git(*args, cwd=cwd, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo_module, "git", counted)
    (repo / "src" / "deeper").mkdir()  # a folder between the probe and the root, changed just now
    for _ in range(2):
        await Repo.discover(repo / "src" / "deeper")
    assert asked == ["rev-parse", "rev-parse"]
