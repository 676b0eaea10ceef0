"""A realistic project to run ADW on, as a new user would: a small Python package in `src/` layout with its
own virtualenv, not configured for ADW at all.

- `.venv/` (made with `python -m venv`, git-ignored) holds pytest, a dependency ADW's own environment lacks
  (`taxrates`, built from a local source tree, so no network index is needed for it) and the project itself,
  editable-installed from the main worktree, so the venv imports the main worktree's `src/`.
- `[tool.ruff]` has `fix = true`, and `src/shop/legacy.py` has a pre-existing, fixable lint finding (F401).
- `tests/test_legacy.py` has a pre-existing failing test; `tests/test_pricing.py` passes and imports `taxrates`.
- a `tox.ini` that names the tests too, as real projects have (tox itself is not installed).

Building the virtualenv takes seconds, so `build_template` runs once per session (see `realistic_template` in
conftest.py) and `copy_project` gives each test its own copy, the editable install re-pointed at the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "shop"
DEPENDENCY = "taxrates"  # installed in the project's .venv only
LINT_FINDING = ("src/shop/legacy.py", 1, "F401")  # path, line, ruff code
FAILING_TEST = "tests/test_legacy.py::test_bulk_discount_starts_at_ten"
PASSING_TEST = "tests/test_pricing.py::test_total_adds_vat"

# A spec that adds a module and its test: what the end-to-end tests run on the project.
COUPONS = """# Coupons

A coupon takes a percentage off a price.

```python path=src/shop/coupons.py
def apply_coupon(price: float, percent: int) -> float:
    return round(price * (100 - percent) / 100, 2)
```

```python path=tests/test_coupons.py
from shop.coupons import apply_coupon


def test_apply_coupon_takes_the_percentage_off() -> None:
    assert apply_coupon(20.0, 25) == 15.0
```
"""

_DEPENDENCY_FILES = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "taxrates"
version = "1.0.0"
""",
    "src/taxrates/__init__.py": '"""VAT rates."""\n\nVAT = 0.2\n',
}

PROJECT_FILES = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "shop"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["taxrates"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100
fix = true

[tool.ruff.lint]
select = ["E", "F", "I"]
""",
    "README.md": "# shop\n\nPrices with VAT.\n",
    ".gitignore": ".venv/\n__pycache__/\n*.egg-info/\n.pytest_cache/\n.ruff_cache/\n",
    "tox.ini": "[tox]\nenv_list = py311\n\n[testenv]\ndeps = pytest\ncommands = pytest {posargs}\n",
    "src/shop/__init__.py": '"""A small shop."""\n',
    "src/shop/pricing.py": """\
from taxrates import VAT


def total(prices: list[float]) -> float:
    return round(sum(prices) * (1 + VAT), 2)
""",
    "src/shop/legacy.py": """\
import os


def bulk_discount(quantity: int) -> float:
    return 0.1 if quantity > 10 else 0.0
""",
    "tests/test_pricing.py": """\
from shop.pricing import total


def test_total_adds_vat() -> None:
    assert total([10.0, 5.0]) == 18.0
""",
    "tests/test_legacy.py": """\
from shop.legacy import bulk_discount


def test_bulk_discount_starts_at_ten() -> None:
    assert bulk_discount(10) == 0.1
""",
}


@dataclass(frozen=True)
class RealisticProject:
    root: Path  # the main worktree: a git repository on branch main, one commit

    @property
    def venv(self) -> Path:
        return self.root / ".venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def write(self, rel: str, content: str, worktree: Path | None = None) -> Path:
        path = (worktree or self.root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        return path


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def build_template(folder: Path, run_git: Callable[..., str]) -> Path:
    """The project with its venv under `folder/shop`; copy it with `copy_project`, don't run in it.
    `run_git(cwd, *args)` is conftest's (a known identity); passed in as conftest imports this module."""
    dependency = folder / "taxrates-src"
    _write_tree(dependency, _DEPENDENCY_FILES)
    root = folder / "shop"
    _write_tree(root, PROJECT_FILES)
    run_git(root, "init", "-q", "-b", "main")
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "initial")
    # No pip in the venv: ADW's pip installs into it (`--python`), which saves the seconds of ensurepip.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(root / ".venv/bin/python"), "install", "-q",
         "--disable-pip-version-check", "pytest", str(dependency), "-e", str(root)],
        check=True, capture_output=True,
    )
    shutil.rmtree(dependency)
    return root


def copy_project(template: Path, dest: Path) -> RealisticProject:
    """A private copy of the template at `dest`, its editable install pointing at the copy's `src/`.

    The venv's files are hard links to the template's (a copy takes seconds on a busy machine): a test may add or
    replace files in it, never change one in place."""
    shutil.copytree(template, dest, symlinks=True, ignore=lambda at, _: [".venv"] if at == str(template) else [])
    shutil.copytree(template / ".venv", dest / ".venv", symlinks=True, copy_function=os.link)
    site = next((dest / ".venv/lib").glob("python3*/site-packages"))
    for record in (*site.glob("__editable__.*.pth"), *site.glob("shop-*.dist-info/direct_url.json")):
        text = record.read_text(encoding="utf-8").replace(str(template), str(dest))
        record.unlink()  # a hard link: write a new file rather than the template's
        record.write_text(text, encoding="utf-8")
    return RealisticProject(root=dest)
