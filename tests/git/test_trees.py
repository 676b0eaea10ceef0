"""adw.git.trees: tree objects written without an index are byte for byte the ones git writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from adw.git.checkpoints import ADW_IDENT, ADW_IDENTITY
from adw.git.trees import (
    TREE,
    Entry,
    Tree,
    TreeCache,
    commit_body,
    object_id,
    parse_tree,
    tree_body,
    tree_id,
    write_loose,
)
from tests.git.test_checkpoints import git_out


def git_in(root: Path, *args: str, input: str) -> str:
    return subprocess.run(["git", *args], cwd=root, input=input, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_tree_sorts_a_folder_as_if_its_name_ended_with_a_slash(repo: Path) -> None:
    """"a" as a folder sorts after "a.txt" and "a-b" ('.' and '-' are below '/') and before "a0"; as a file it
    sorts first. The id computed here is git's, and parsing the body gives the tree back."""
    blob = git_in(repo, "hash-object", "-w", "--stdin", input="x\n")
    sub = git_in(repo, "mktree", input=f"100644 blob {blob}\tinner\n")
    for a_mode, a_type, a_oid in ((TREE, "tree", sub), (b"100644", "blob", blob)):
        tree: Tree = {b"a0": (b"100644", blob), b"a.txt": (b"100755", blob), b"a": (a_mode, a_oid),
                      b"a-b": (b"120000", blob)}
        listing = "".join(f"{mode.decode().rjust(6, '0')} {kind} {oid}\t{name.decode()}\n" for name, (mode, oid), kind
                          in zip(tree, tree.values(), ["blob", "blob", a_type, "blob"], strict=True))
        assert tree_id(tree_body(tree)) == git_in(repo, "mktree", input=listing)
        assert parse_tree(tree_body(tree)) == tree


async def test_rebuild_removes_a_folder_left_empty_and_writes_what_git_would(repo: Path) -> None:
    """Deleting the only file of src/ drops the folder; editing README.md gives the tree `add -A` gives."""
    cache = TreeCache()
    base = git_out(repo, "rev-parse", "HEAD^{tree}")
    (repo / "src/app.py").unlink()
    (repo / "README.md").write_text("# edited\n")
    blob = git_out(repo, "hash-object", "-w", "README.md")
    folders = await cache.folders(repo, base, [b"src/app.py", b"README.md"])
    assert set(folders) == {b"", b"src"} and folders[b""] == base
    made = await cache.rebuild(repo, folders, {b"src/app.py": None, b"README.md": (b"100644", blob)})
    git_out(repo, "add", "-A")
    assert made == git_out(repo, "write-tree")


def test_a_loose_tree_written_here_is_the_object_git_reads_and_an_existing_one_is_left_alone(repo: Path) -> None:
    """`write_loose` stores a tree git reads back entry for entry and `fsck --strict` accepts; writing it again
    keeps the file (same inode, no temporary left) and only freshens its date, as git does for `gc`."""
    blob = git_in(repo, "hash-object", "-w", "--stdin", input="x\n")
    tree: Tree = {b"b.txt": (b"100644", blob), b"a": (b"100755", blob)}
    body = tree_body(tree)
    oid = tree_id(body)
    objects = repo / ".git/objects"
    write_loose(objects, oid, b"tree", body)
    stored = objects / oid[:2] / oid[2:]
    assert git_out(repo, "cat-file", "-t", oid) == "tree"
    assert git_out(repo, "ls-tree", oid) == f"100755 blob {blob}\ta\n100644 blob {blob}\tb.txt"
    assert git_out(repo, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
    assert stored.stat().st_mode & 0o777 == 0o444
    os.utime(stored, (1, 1))
    inode = stored.stat().st_ino
    write_loose(objects, oid, b"tree", body)
    assert stored.stat().st_ino == inode and stored.stat().st_mtime > 1
    assert sorted(p.name for p in stored.parent.iterdir()) == [oid[2:]]


async def test_rebuild_writes_trees_with_mktree_without_an_objects_folder(repo: Path) -> None:
    """The fallback (an objects folder this process may not write) gives the same root tree through git."""
    base = git_out(repo, "rev-parse", "HEAD^{tree}")
    (repo / "src/app.py").write_text("other\n")
    blob = git_out(repo, "hash-object", "-w", "src/app.py")
    edits: dict[bytes, Entry | None] = {b"src/app.py": (b"100644", blob)}
    loose, spawned = TreeCache(), TreeCache()
    made = await loose.rebuild(repo, await loose.folders(repo, base, list(edits)), edits, repo / ".git/objects")
    assert made == await spawned.rebuild(repo, await spawned.folders(repo, base, list(edits)), edits)
    git_out(repo, "add", "-A")
    assert made == git_out(repo, "write-tree")


@pytest.mark.parametrize("message", ["adw index\n", "fix: ünïcode — and\n\nadw-kind: checkpoint\n", "no newline"])
def test_a_commit_written_here_is_byte_for_byte_git_commit_tree(repo: Path, message: str) -> None:
    """The same tree, parents, identity, date and message give git's id and bytes (two parents, none, one)."""
    tree = git_out(repo, "rev-parse", "HEAD^{tree}")
    head = git_out(repo, "rev-parse", "HEAD")
    date = "1765000000 +0000"
    env = {**os.environ, **ADW_IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    for parents in ([], [head], [head, git_out(repo, "commit-tree", tree, "-m", "other")]):
        argv = ["git", "commit-tree", tree, *(arg for p in parents for arg in ("-p", p))]
        made = subprocess.run(argv, cwd=repo, env=env, input=message.encode(), capture_output=True, check=True)
        theirs = made.stdout.decode().strip()
        body = commit_body(tree, parents, ADW_IDENT, date, message)
        assert object_id(b"commit", body) == theirs
        stored = subprocess.run(["git", "cat-file", "commit", theirs], cwd=repo, capture_output=True, check=True)
        assert stored.stdout == body
