"""`adw demo`: a small Python repository with three specs, ready for `adw sdlc` with the built-in agents."""

from __future__ import annotations

from pathlib import Path

from adw.errors import AdwError
from adw.git.runner import git
from adw.sdlc.steps import FALLBACK_IDENTITY, has_identity

SPECS = {
    "add": """# Add

`add(a, b)` returns the sum of two numbers.

```python path=src/calc/add.py
\"\"\"Addition.\"\"\"


def add(a: float, b: float) -> float:
    return a + b
```

```python path=tests/test_add.py
from calc.add import add


def test_add() -> None:
    assert add(2, 3) == 5
```
""",
    "multiply": """# Multiply

`multiply(a, b)` returns the product; `square(x)` builds on it.

```python path=src/calc/multiply.py
\"\"\"Multiplication.\"\"\"


def multiply(a: float, b: float) -> float:
    return a * b


def square(x: float) -> float:
    return multiply(x, x)
```

```python path=tests/test_multiply.py
from calc.multiply import multiply, square


def test_multiply() -> None:
    assert multiply(4, 5) == 20


def test_square() -> None:
    assert square(3) == 9
```
""",
    "greet": """# Greet

`Greeter(name).greet()` says hello.

```python path=src/calc/greet.py
\"\"\"Greetings.\"\"\"


class Greeter:
    def __init__(self, name: str) -> None:
        self.name = name

    def greet(self) -> str:
        return f"Hello, {self.name}!"
```

```python path=tests/test_greet.py
from calc.greet import Greeter


def test_greet() -> None:
    assert Greeter("Ada").greet() == "Hello, Ada!"
```
""",
}

FILES = {
    "README.md": "# calc\n\nA demo repository for ADW. Its specs are in `specs/`.\n",
    "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1.0"\n\n'
    '[tool.pytest.ini_options]\npythonpath = ["src"]\n\n'
    "# The demo has no virtualenv of its own: its tests run with the interpreter that runs ADW.\n"
    '[tool.adw.agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n',
    ".gitignore": "__pycache__/\n.pytest_cache/\n.ruff_cache/\n",
    "src/calc/__init__.py": '"""A tiny calculator."""\n',
}


def _write(path: Path, files: dict[str, str]) -> None:
    if path.exists() and any(path.iterdir()):
        raise AdwError(f"{path} is not empty", "pass a new folder: `adw demo PATH`")
    for relative, content in files.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


async def create_demo_repo(path: Path) -> list[Path]:
    """Create the demo repository at `path` (new or empty) with one commit on `main`; returns its specs."""
    _write(path, {**FILES, **{f"specs/{name}.md": text for name, text in SPECS.items()}})
    await git("init", "-q", "-b", "main", cwd=path)
    await git("add", "-A", cwd=path)
    identity = () if await has_identity(path) else FALLBACK_IDENTITY
    await git(*identity, "commit", "-q", "-m", "calc: initial commit", cwd=path)
    return [path / f"specs/{name}.md" for name in SPECS]
