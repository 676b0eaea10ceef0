"""The built-in agents that need no LLM: spec-apply, pytest, ruff and summary."""

from __future__ import annotations

import os
from pathlib import Path

from adw.agents.spec_apply import file_blocks
from adw.agents.summary import compare
from adw.config import AdwConfig, PhaseConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.models import Severity, Task, TaskState, Workflow
from tests.conftest import run_git
from tests.fakes import FAST, workflow

SPEC = """# Calculator

Adds `add`.

```python path=src/calc/add.py
def add(a, b):
    return a + b
```

````markdown path="docs/nested fence.md"
```python
print("inside")
```
````

~~~toml path=config/app.toml
name = "calc"
~~~

```python
# no path: an example, not a file
```
"""


# What `adw demo` configures: no virtualenv of its own, so the tests run with the interpreter running ADW.
ADW_PYTHON = FAST.model_copy(
    update={"agents": FAST.agents.model_copy(update={"test_command": ["python", "-m", "pytest", "-q"]})}
)


async def run_phase(
    cwd: Path, agent: str, phase: str, spec: str | None = None, config: AdwConfig = FAST, **fields: object
) -> Workflow:
    spec_file = None
    if spec is not None:
        spec_file = cwd.parent / "spec.md"
        spec_file.write_text(spec, encoding="utf-8")
    task = Task(id=phase, phase=phase, agent=agent, config=PhaseConfig.model_validate({"agent": agent}))
    wf = workflow(cwd, [task], spec=str(spec_file) if spec_file else None, **fields)
    return await Engine(config=config, agents=agent_factories()).run(wf)


def test_file_blocks_follow_commonmark_fences() -> None:
    blocks = file_blocks(SPEC)
    assert [(b.path, b.line) for b in blocks] == [
        ("src/calc/add.py", 5),
        ("docs/nested fence.md", 10),
        ("config/app.toml", 16),
    ]
    assert blocks[0].content == "def add(a, b):\n    return a + b\n"
    assert blocks[1].content == '```python\nprint("inside")\n```\n'


async def test_spec_apply_plans_without_writing_then_builds(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    planned = await run_phase(work, "spec-apply", "plan", SPEC)
    plan = planned.task("plan")
    assert plan.state is TaskState.SUCCEEDED
    assert plan.outputs["files"] == ["src/calc/add.py", "docs/nested fence.md", "config/app.toml"]
    assert list(work.iterdir()) == []
    built = (await run_phase(work, "spec-apply", "build", SPEC)).task("build")
    assert built.state is TaskState.SUCCEEDED
    assert built.summary == "wrote 3 file(s) (3 new, 0 changed, 0 unchanged)"
    assert (work / "src/calc/add.py").read_text() == "def add(a, b):\n    return a + b\n"
    again = (await run_phase(work, "spec-apply", "build", SPEC)).task("build")
    assert again.summary == "wrote 0 file(s) (0 new, 0 changed, 3 unchanged)" and again.files_changed == []


async def test_spec_apply_refuses_paths_that_leave_the_worktree_and_writes_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "link").symlink_to(tmp_path)
    bad = (
        "```python path=ok.py\nx = 1\n```\n"
        "```python path=../escape.py\nx = 1\n```\n"
        "```python path=/tmp/absolute.py\nx = 1\n```\n"
        "```python path=link/through-symlink.py\nx = 1\n```\n"
        "```python path=.git/hooks/pre-commit\nx = 1\n```\n"
    )
    done = (await run_phase(work, "spec-apply", "build", bad)).task("build")
    assert done.state is TaskState.FAILED
    assert done.reason.startswith("refused 4 file block(s), wrote nothing")
    assert [(f.line, f.severity) for f in done.findings] == [
        (4, Severity.ERROR),
        (7, Severity.ERROR),
        (10, Severity.ERROR),
        (13, Severity.ERROR),
    ]
    assert "leaves the worktree" in done.findings[0].message
    assert "absolute paths are refused" in done.findings[1].message
    assert not (work / "ok.py").exists() and not (tmp_path / "escape.py").exists()
    assert not (tmp_path / "through-symlink.py").exists()


async def test_spec_apply_without_file_blocks_says_how_to_write_them(tmp_path: Path) -> None:
    done = (await run_phase(tmp_path, "spec-apply", "plan", "# Just prose\n")).task("plan")
    assert done.state is TaskState.FAILED and "path=src/app.py" in done.reason


async def test_pytest_agent_turns_each_failure_into_a_finding_at_file_and_line(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "tests").mkdir(parents=True)
    (work / "tests/test_calc.py").write_text(
        "def test_ok():\n    assert 1 + 1 == 2\n\n\ndef test_bad():\n    value = 2\n    assert value == 3\n"
    )
    done = (await run_phase(work, "pytest", "test", config=ADW_PYTHON)).task("test")
    assert done.state is TaskState.FAILED
    assert done.summary == "1 passed, 1 failed (configured: [tool.adw.agents] test_command is set)"
    [finding] = done.findings
    assert (finding.path, finding.line, finding.severity, finding.source) == (
        "tests/test_calc.py",
        7,
        Severity.ERROR,
        "pytest",
    )
    assert finding.message.startswith("test_bad: assert 2 == 3")
    leftovers = {p.name for p in work.rglob("*")}
    assert ".pytest_cache" not in leftovers and "__pycache__" not in leftovers and "junit.xml" not in leftovers


async def test_pytest_agent_with_no_tests_succeeds(tmp_path: Path) -> None:
    done = (await run_phase(tmp_path, "pytest", "test", config=ADW_PYTHON)).task("test")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.summary.startswith("no tests collected (configured:")


async def test_ruff_agent_reports_lint_at_file_and_line_and_fails_on_syntax_errors(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "mod.py").write_text('"""Doc."""\n\nimport os\n')
    done = (await run_phase(work, "ruff", "review")).task("review")
    assert done.state is TaskState.SUCCEEDED
    [finding] = done.findings
    assert (finding.path, finding.line, finding.code, finding.severity) == (
        "mod.py",
        3,
        "F401",
        Severity.WARNING,
    )
    (work / "broken.py").write_text("def f(:\n")
    done = (await run_phase(work, "ruff", "review")).task("review")
    assert done.state is TaskState.FAILED and "syntax error(s)" in done.reason
    assert any(f.path == "broken.py" and f.severity is Severity.ERROR for f in done.findings)


def test_summary_compares_definitions_by_ast() -> None:
    old = "def a():\n    return 1\n\n\nclass C:\n    def m(self):\n        pass\n\n\ndef gone():\n    pass\n"
    new = "def a():\n    return 2\n\n\nclass C:\n    def m(self):\n\n        pass\n\n"
    new += "    def n(self):\n        pass\n"
    assert compare(old, new) == [
        "added function C.n",
        "changed function a",
        "changed class C",
        "removed function gone",
    ]


async def test_summary_writes_the_change_summary_of_the_diff(repo: Path) -> None:
    base = run_git(repo, "rev-parse", "HEAD").strip()
    (repo / "src/app.py").write_text("def main():\n    return 2\n\n\ndef extra():\n    return 3\n")
    (repo / "src/new.py").write_text("class Thing:\n    pass\n")
    (repo / "README.md").unlink()
    done = (await run_phase(repo, "summary", "document", worktree="feature", base_commit=base)).task("document")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.files_changed == ["docs/changes/feature.md"]
    text = (repo / "docs/changes/feature.md").read_text()
    assert "| `README.md` | deleted |" in text and "| `src/app.py` | changed |" in text
    assert "| `src/new.py` | added |" in text
    assert "- added function extra" in text and "- changed function main" in text and "- added class Thing" in text
    assert os.path.basename(done.summary.split("wrote ")[1]) == "feature.md"
