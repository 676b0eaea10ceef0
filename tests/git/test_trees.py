"""adw.git.trees: tree objects written without an index are byte for byte the ones git writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from adw.git.trees import TREE, Tree, TreeCache, parse_tree, tree_body, tree_id
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
