"""The history scout: past commits whose messages match the task vote for the files they touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from adw.scouts import engine, scout
from adw.scouts.history import MASS_CHANGE, read_history
from adw.scouts.terms import parse_query
from tests.conftest import MakeRepo, run_git

# No file of the tree says "invoice" or "rounding": only the history links the task to billing.py.
FILES = {
    "shop/__init__.py": "",
    "shop/billing.py": "def total(items):\n    return sum(item.price for item in items)\n",
    "shop/catalog.py": "def find_product(name):\n    return PRODUCTS.get(name)\n",
    "shop/users.py": "def login(user, password):\n    return user.check(password)\n",
}
TASK = "invoice rounding is wrong for refunds"


def commit(root: Path, message: str, files: dict[str, str]) -> str:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", message)
    return run_git(root, "rev-parse", "HEAD").strip()


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_STATES", {})
    monkeypatch.setattr(engine, "_HISTORIES", {})


@pytest.fixture
def shop(make_repo: MakeRepo) -> Path:
    root = make_repo(FILES, name="shop")
    commit(root, "Fix invoice rounding for refunds", {"shop/billing.py": FILES["shop/billing.py"] + "# cents\n"})
    commit(root, "Speed up product search", {"shop/catalog.py": FILES["shop/catalog.py"] + "# cached\n"})
    return root


async def test_a_task_reaches_a_file_only_history_connects_it_to(shop: Path, make_repo: MakeRepo) -> None:
    report = await scout(TASK, shop)
    assert report.files[0] == "shop/billing.py"
    location = report.locations[0]
    assert location.scouts == ["history"]
    assert "Fix invoice rounding for refunds" in location.reason
    # The same files without their history: nothing leads there.
    tree_only = make_repo({path: (shop / path).read_text() for path in FILES}, name="no-history")
    assert "shop/billing.py" not in (await scout(TASK, tree_only)).files


async def test_commits_after_head_are_never_used(make_repo: MakeRepo) -> None:
    root = make_repo(FILES, name="shop")
    base = run_git(root, "rev-parse", "HEAD").strip()
    run_git(root, "checkout", "-q", "-b", "future")
    later = commit(root, "Fix invoice rounding for refunds", {"shop/billing.py": "# later\n"})
    run_git(root, "checkout", "-q", "--detach", base)
    history = await read_history(root)
    assert history.head == base and later not in {c.sha for c in history.commits}
    assert "shop/billing.py" not in (await scout(TASK, root)).files


async def test_merge_commits_and_mass_changes_cast_no_vote(make_repo: MakeRepo) -> None:
    root = make_repo(FILES, name="shop")
    run_git(root, "checkout", "-q", "-b", "side")
    commit(root, "Tidy the catalog", {"shop/catalog.py": "# tidy\n"})
    run_git(root, "checkout", "-q", "main")
    run_git(root, "merge", "-q", "--no-ff", "-m", "Merge invoice rounding for refunds", "side")
    spread = {f"shop/generated/module_{i}.py": "# generated\n" for i in range(MASS_CHANGE + 1)}
    commit(root, "Invoice rounding for refunds everywhere", {**spread, "shop/billing.py": "# everywhere\n"})
    history = await read_history(root)
    assert not any(c.subject.startswith("Merge") for c in history.commits)
    assert history.mass[0]
    assert history.votes(parse_query(TASK).terms, {}, set(history.churn)) == {}


async def test_renamed_files_keep_their_past_and_deleted_ones_get_no_vote(shop: Path) -> None:
    run_git(shop, "mv", "shop/billing.py", "shop/money.py")
    run_git(shop, "commit", "-q", "-m", "Move the billing module")
    commit(shop, "Refunds rounding fix for old receipts", {"shop/receipts.py": "# old\n"})
    run_git(shop, "rm", "-q", "shop/receipts.py")
    run_git(shop, "commit", "-q", "-m", "Drop receipts")
    report = await scout(TASK, shop)
    assert report.files[0] == "shop/money.py"
    assert "shop/receipts.py" not in report.files and "shop/billing.py" not in report.files


async def test_history_is_cached_by_head_and_read_incrementally_when_head_moves(shop: Path) -> None:
    await scout(TASK, shop)
    state = engine._STATES[shop.resolve()]
    first = state.history
    assert first is not None and first.head == run_git(shop, "rev-parse", "HEAD").strip()
    await scout("product search", shop)
    assert state.history is first  # same HEAD: not read again
    head = commit(shop, "Round invoices for partial refunds", {"shop/users.py": "# refunds\n"})
    await scout(TASK, shop)
    moved = state.history
    assert moved is not None and moved.head == head and len(moved) == len(first) + 1
    assert moved.commits[0].sha == head
    assert all(new is old for new, old in zip(moved.commits[1:], first.commits, strict=True))  # reused, not re-read
    # A rewritten history (HEAD no longer descends from the cached one) is read in full.
    run_git(shop, "reset", "-q", "--hard", "HEAD~2")
    rewritten = commit(shop, "Another start", {"shop/users.py": "# again\n"})
    await scout(TASK, shop)
    assert state.history is not None and [c.sha for c in state.history.commits][:1] == [rewritten]
    assert head not in {c.sha for c in state.history.commits}
