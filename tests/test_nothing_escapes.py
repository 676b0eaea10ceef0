"""Nothing ADW writes escapes the worktree: links on disk are refused, never followed, and a batch of files is
written all or nothing (issue #11, points 10 and 11)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from adw.errors import PathOutsideError
from adw.fsutil import read_inside, write_all_inside, write_inside
from adw.git.worktrees import Worktrees
from adw.scouts import save_report
from adw.scouts.models import ScoutReport
from adw.workflow.models import TaskState
from tests.agents.test_agents_builtin import run_phase
from tests.conftest import MakeRepo, run_git

REPORT = ScoutReport(task="t", files=["a.py"], tests=[], docs=[], config=[], locations=[], count=1, method="m",
                     timestamp="2026-01-01T00:00:00Z")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every worktree holding a file that must never change."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "victim.md").write_text("precious\n", encoding="utf-8")
    return folder


def files_in(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file()}


def test_write_inside_writes_and_replaces_keeping_the_mode(tmp_path: Path) -> None:
    write_inside(tmp_path, "a/b/c.txt", "one")
    (tmp_path / "a/b/c.txt").chmod(0o755)
    write_inside(tmp_path, "a/b/c.txt", b"two")
    assert read_inside(tmp_path, "a/b/c.txt") == b"two"
    assert (tmp_path / "a/b/c.txt").stat().st_mode & 0o777 == 0o755
    assert read_inside(tmp_path, "a/missing.txt") is None
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["c.txt"]  # no temporary file left


def test_a_symlinked_folder_is_refused_and_nothing_is_written_outside(tmp_path: Path, outside: Path) -> None:
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "docs" / "inner").symlink_to(outside)
    with pytest.raises(PathOutsideError, match="symbolic link"):
        write_inside(work, "docs/inner/victim.md", "overwritten")
    with pytest.raises(PathOutsideError):
        write_inside(work, "docs/inner/new.md", "new")
    assert files_in(outside) == {"victim.md": "precious\n"}


def test_a_symlinked_final_file_is_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "notes.md").symlink_to(outside / "victim.md")
    with pytest.raises(PathOutsideError, match=r"notes\.md is a symbolic link"):
        write_inside(tmp_path, "notes.md", "overwritten")
    with pytest.raises(PathOutsideError):
        read_inside(tmp_path, "notes.md")
    assert files_in(outside) == {"victim.md": "precious\n"}


def test_relative_paths_only(tmp_path: Path) -> None:
    for bad in ("../x", "/etc/x", "a/../../x", ""):
        with pytest.raises(PathOutsideError):
            write_inside(tmp_path, bad, "x")


def test_a_batch_is_written_all_or_nothing(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(PathOutsideError):
        write_all_inside(tmp_path, {"first.txt": "1", "sub/second.txt": "2", "link/third.txt": "3"})
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()) == ["victim.md"]
    assert files_in(outside) == {"victim.md": "precious\n"}


async def test_summary_agent_refuses_a_committed_docs_link(make_repo: MakeRepo, outside: Path) -> None:
    repo = make_repo({"README.md": "# demo\n"})
    (repo / "docs").symlink_to(outside)
    (outside / "changes").mkdir()
    (outside / "changes" / "feature.md").write_text("someone else's file\n", encoding="utf-8")
    run_git(repo, "add", "docs")
    run_git(repo, "commit", "-q", "-m", "docs live elsewhere")
    base = run_git(repo, "rev-parse", "HEAD~1").strip()
    done = (await run_phase(repo, "summary", "document", worktree="feature", base_commit=base)).task("document")
    assert done.state is TaskState.FAILED
    assert "docs" in done.reason and "symbolic link" in done.reason
    assert files_in(outside) == {"victim.md": "precious\n", "changes/feature.md": "someone else's file\n"}


async def test_scout_report_refuses_a_linked_output_folder_and_exclude_file(repo: Path, outside: Path) -> None:
    (repo / "scout_outputs").symlink_to(outside)
    with pytest.raises(PathOutsideError):
        await save_report(REPORT, repo)
    assert files_in(outside) == {"victim.md": "precious\n"}

    (repo / "scout_outputs").unlink()
    exclude = repo / ".git" / "info" / "exclude"
    exclude.unlink(missing_ok=True)
    exclude.symlink_to(outside / "victim.md")
    saved = await save_report(REPORT, repo)  # the report is written; the linked exclude file is left alone
    assert saved.read_text(encoding="utf-8").startswith("{")
    assert files_in(outside) == {"victim.md": "precious\n"}


async def test_scout_report_lists_its_folder_in_info_exclude_once(repo: Path) -> None:
    await save_report(REPORT, repo)
    await save_report(REPORT, repo)
    exclude = (repo / ".git" / "info" / "exclude").read_text(encoding="utf-8")
    assert exclude.splitlines().count("/scout_outputs/") == 1
    assert run_git(repo, "status", "--porcelain") == ""


FILE_AND_FOLDER = "```python path=a\nx = 1\n```\n```python path=a/b\ny = 2\n```\n```python path=c.py\nz = 3\n```\n"


@pytest.mark.parametrize("phase", ["plan", "build"])
async def test_spec_apply_refuses_a_path_that_is_both_file_and_folder(tmp_path: Path, phase: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = (await run_phase(work, "spec-apply", phase, FILE_AND_FOLDER)).task(phase)
    assert done.state is TaskState.FAILED
    assert "a/b needs a to be a folder, but line 1 writes it as a file" in done.reason
    assert list(work.iterdir()) == []


async def test_spec_apply_refuses_a_file_or_link_in_the_way_on_disk(tmp_path: Path, outside: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "src").write_text("a file, not a folder\n", encoding="utf-8")
    (work / "docs").symlink_to(outside)
    spec = "```python path=ok.py\n1\n```\n```python path=src/x.py\n2\n```\n```md path=docs/victim.md\n3\n```\n"
    planned = (await run_phase(work, "spec-apply", "plan", spec)).task("plan")
    assert planned.state is TaskState.FAILED and "refused 2 file block(s)" in planned.reason
    built = (await run_phase(work, "spec-apply", "build", spec)).task("build")
    assert built.state is TaskState.FAILED
    assert not (work / "ok.py").exists()
    assert files_in(outside) == {"victim.md": "precious\n"}


def branch_with_link(repo: Path, branch: str, name: str, target: Path) -> None:
    """A branch off HEAD that commits `name` as a link to `target`, without touching the worktree."""
    def git_in(*args: str, data: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, input=data, text=True, capture_output=True,
                              check=True).stdout.strip()

    link = git_in("hash-object", "-w", "--stdin", data=str(target))
    tree = git_in("mktree", data=run_git(repo, "ls-tree", "HEAD") + f"120000 blob {link}\t{name}\n")
    run_git(repo, "branch", branch, run_git(repo, "commit-tree", tree, "-p", "HEAD", "-m", "link").strip())


async def test_worktreeinclude_copies_never_follow_a_link_committed_in_the_branch(repo: Path, outside: Path) -> None:
    (repo / ".gitignore").write_text("config/*.local.json\n")
    (repo / ".worktreeinclude").write_text("config/*.local.json\n")
    (repo / "config").mkdir()
    (repo / "config" / "victim.local.json").write_text("{}\n")
    branch_with_link(repo, "linked", "config", outside)  # the main worktree keeps a real folder
    wts = await Worktrees.open(repo)
    with pytest.raises(PathOutsideError, match="symbolic link"):
        await wts.create("w", branch="linked")
    assert files_in(outside) == {"victim.md": "precious\n"}
    assert not (wts.root / "w").exists()
