"""The resident ADW keeps between commands what a new process rebuilds (the parsers, the repository's discovery and
configuration, a checkpoint store with an inotify watch per worktree): whatever plain git, an editor or another ADW
process changes between two commands is in its next answer, which equals the answer of a process of its own."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.test_cli_resident import adw, served
from tests.cli.test_cli_resident_attacks import LOCAL, both, start, stop
from tests.conftest import MakeRepo, age, run_git
from tests.git.test_checkpoint_property import full_add_tree


def test_changes_made_outside_between_two_commands_are_in_the_next_answer(
    make_repo: MakeRepo, tmp_path: Path, runtime: Path
) -> None:
    repo = make_repo({"README.md": "# demo\n", "src/app.py": "v1\n", "src/util.py": "u1\n"})
    linked = tmp_path / "linked"
    run_git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    age(tmp_path)  # older than the racy window: the resident ADW trusts its caches from the first command
    pid = start(repo)
    fresh = iter(range(100))

    def checkpoint_tree(*args: str) -> dict[str, object]:
        """A checkpoint made by the resident ADW: its tree must be what a full `add -A` gives now."""
        done = adw(linked, "checkpoint", *args, "--json")
        assert done.returncode == 0, done.stderr
        made: dict[str, object] = json.loads(done.stdout)
        checkpoint = made["checkpoint"]
        assert isinstance(checkpoint, dict)
        assert checkpoint["tree"] == full_add_tree(linked, tmp_path / f"index-{next(fresh)}")
        return made

    def same_as_a_process_of_its_own(*args: str) -> None:
        remote, local = both(repo, *args, cwd=linked)
        assert remote == local, args

    try:
        checkpoint_tree("-m", "first")  # the store's first snapshot: a full one
        # Plain git between two commands: a commit, an edit, a new file, a deletion, a new branch.
        (linked / "src/app.py").write_text("v2\n", encoding="utf-8")
        run_git(linked, "commit", "-qam", "outside ADW")
        run_git(linked, "switch", "-qc", "elsewhere")
        (linked / "src/util.py").unlink()
        (linked / "notes.txt").write_text("untracked\n", encoding="utf-8")
        checkpoint_tree("-m", "after plain git")
        same_as_a_process_of_its_own("checkpoints", "--json")

        # Another ADW process checkpoints and undoes (its own shadow index writes): the resident ADW sees both.
        (linked / "src/app.py").write_text("v3\n", encoding="utf-8")
        made = adw(linked, "checkpoint", "-m", "by another process", env={**os.environ, **LOCAL})
        assert made.returncode == 0, made.stderr
        same_as_a_process_of_its_own("checkpoints", "--json")
        (linked / "src/app.py").write_text("v4\n", encoding="utf-8")
        assert adw(linked, "undo", env={**os.environ, **LOCAL}).returncode == 0
        assert (linked / "src/app.py").read_text(encoding="utf-8") == "v3\n"
        same_as_a_process_of_its_own("checkpoints", "--all", "--json")
        (linked / "src/new.py").write_text("n\n", encoding="utf-8")
        checkpoint_tree("-m", "after another process's undo")

        # The configuration changed: its new size cap applies to the next checkpoint.
        (repo / ".adw.toml").write_text("[checkpoint]\nmax_untracked_size = 100\n", encoding="utf-8")
        (linked / "big.bin").write_bytes(b"x" * 1000)
        capped = json.loads(adw(linked, "checkpoint", "--json").stdout)
        assert capped["skipped"] == ["big.bin"]
        (linked / "big.bin").unlink()
        (repo / ".adw.toml").unlink()

        # The worktree moved away and another added at its path: a new git dir, a new stack, a new watch.
        run_git(repo, "worktree", "move", str(linked), str(tmp_path / "moved"))
        run_git(repo, "worktree", "add", "-q", "-b", "again", str(linked))
        same_as_a_process_of_its_own("checkpoints", "--json")
        assert json.loads(adw(linked, "checkpoints", "--json").stdout) == []
        (linked / "src/app.py").write_text("in the new worktree\n", encoding="utf-8")
        checkpoint_tree("-m", "in the new worktree")
        same_as_a_process_of_its_own("status", "--json")
        assert served(repo) == 11  # every `adw` above without LOCAL was answered by the resident ADW
    finally:
        stop(pid)
