"""Test environment discovery (adw.agents.environment) per kind on small trees, and the test phase on the realistic
project: its own virtualenv, the worktree's code rather than the main worktree's, the setup hook's failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adw.agents.environment import TestEnvironment, discover_test_environment, source_roots
from adw.config import PhaseConfig
from adw.errors import ConfigError
from adw.sdlc.engine import agent_factories, open_engine
from adw.sdlc.pipeline import sdlc_workflows
from adw.workflow.engine import Engine
from adw.workflow.events import Progress
from adw.workflow.models import Severity, Task, TaskState
from tests.conftest import MakeRepo, run_git
from tests.fakes import FAST, workflow
from tests.realistic import FAILING_TEST, PASSING_TEST, RealisticProject

INSTALLED = {"uv", "poetry", "hatch", "tox", "nox", "npm", "cargo", "go", "make"}


def which_of(installed: set[str]) -> object:
    return lambda program: f"/opt/bin/{program}" if program in installed else None


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def make_venv(root: Path, name: str = ".venv", pytest_installed: bool = True) -> Path:
    """The parts of a virtualenv that discovery looks at: pyvenv.cfg, bin/python, pytest in site-packages."""
    venv = root / name
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    (venv / "bin/python").symlink_to(sys.executable)
    site = venv / "lib/python3.11/site-packages"
    site.mkdir(parents=True)
    if pytest_installed:
        tree(site, {"pytest/__init__.py": ""})
    return venv


def discover(root: Path, main: Path | None = None, configured: list[str] | None = None,
             installed: set[str] = INSTALLED) -> TestEnvironment:
    return discover_test_environment(root, main or root, configured, which_of(installed))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("files", "installed", "kind", "argv", "junit"),
    [
        ({"uv.lock": ""}, INSTALLED, "uv", ["/opt/bin/uv", "run", "--frozen", "pytest", "-q"], True),
        ({"poetry.lock": ""}, INSTALLED, "poetry", ["/opt/bin/poetry", "run", "pytest", "-q"], True),
        ({"pyproject.toml": "[tool.poetry]\nname = 'x'\n"}, INSTALLED, "poetry",
         ["/opt/bin/poetry", "run", "pytest", "-q"], True),
        ({"hatch.toml": ""}, INSTALLED, "hatch", ["/opt/bin/hatch", "test"], False),
        ({"pyproject.toml": "[tool.hatch.envs.default]\n"}, INSTALLED, "hatch", ["/opt/bin/hatch", "test"], False),
        ({"tox.ini": "[tox]\n"}, INSTALLED, "tox", ["/opt/bin/tox"], False),
        ({"noxfile.py": ""}, INSTALLED, "nox", ["/opt/bin/nox"], False),
        ({"package.json": '{"scripts": {"test": "vitest run"}}'}, INSTALLED, "npm", ["/opt/bin/npm", "test"], False),
        ({"Cargo.toml": ""}, INSTALLED, "cargo", ["/opt/bin/cargo", "test"], False),
        ({"go.mod": "module x\n"}, INSTALLED, "go", ["/opt/bin/go", "test", "./..."], False),
        ({"Makefile": "build:\n\tcc x.c\n\ntest: build\n\t./x\n"}, INSTALLED, "make", ["/opt/bin/make", "test"],
         False),
        # The first kind that fits wins, and a tool that is not installed is passed over for the next.
        ({"uv.lock": "", "tox.ini": "", "Makefile": "test:\n"}, INSTALLED, "uv", None, True),
        ({"uv.lock": "", "tox.ini": "", "Makefile": "test:\n"}, {"make"}, "make", None, False),
    ],
)
def test_each_kind_is_found_by_its_files_where_its_tool_is_installed(
    tmp_path: Path, files: dict[str, str], installed: set[str], kind: str, argv: list[str] | None, junit: bool
) -> None:
    found = discover(tree(tmp_path, files), installed=installed)
    assert (found.kind, found.junit) == (kind, junit)
    assert argv is None or found.argv == argv
    assert argv is None or f"`{Path(argv[0]).name}` is installed" in found.reason
    assert ("PYTHONPATH" in found.env) is (kind in ("uv", "poetry", "hatch"))


def test_a_configured_command_comes_first_and_python_means_adws_interpreter(tmp_path: Path) -> None:
    make_venv(tree(tmp_path, {"uv.lock": ""}))
    found = discover(tmp_path, configured=["python", "-m", "pytest", "-x"])
    assert (found.kind, found.argv, found.junit) == ("configured", [sys.executable, "-m", "pytest", "-x"], True)
    assert "test_command is set" in found.reason
    other = discover(tmp_path, configured=["./run-tests.sh", "--fast"])
    assert (other.argv, other.junit) == (["./run-tests.sh", "--fast"], False)


def test_the_worktrees_venv_then_the_main_worktrees(tmp_path: Path) -> None:
    main, worktree = tmp_path / "main", tmp_path / "wt"
    main_venv = make_venv(main, "venv")
    worktree.mkdir()
    found = discover(worktree, main)
    assert found.kind == "venv" and found.argv == [str(main_venv / "bin/python"), "-m", "pytest", "-q"]
    assert found.reason == f"the main worktree's virtualenv {main_venv}" and found.junit
    assert found.env["VIRTUAL_ENV"] == str(main_venv)
    assert found.env["PATH"].split(os.pathsep)[0] == str(main_venv / "bin")
    own = make_venv(worktree)
    assert discover(worktree, main).argv[0] == str(own / "bin/python")


def test_a_venv_without_pytest_is_passed_over_and_named_when_nothing_fits(tmp_path: Path) -> None:
    venv = make_venv(tmp_path, pytest_installed=False)
    (tmp_path / "uv.lock").write_text("")
    with pytest.raises(ConfigError) as caught:
        discover(tmp_path, installed=set())
    error = caught.value
    assert error.message.startswith("found no way to run this repository's tests")
    assert f"{venv} has no pytest" in error.message and "uv.lock found but `uv` is not installed" in error.message
    assert 'test_command = ["python", "-m", "pytest", "-q"] under [tool.adw.agents]' in error.hint
    assert discover(tree(tmp_path, {"go.mod": ""}), installed={"go"}).kind == "go"


def test_npm_placeholder_and_make_assignments_are_not_test_commands(tmp_path: Path) -> None:
    placeholder = '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'
    tree(tmp_path, {"package.json": placeholder, "Makefile": "test := unit\nall:\n"})
    with pytest.raises(ConfigError):
        discover(tmp_path)


@pytest.mark.parametrize(
    ("files", "roots"),
    [
        ({"src/pkg/__init__.py": ""}, ["src"]),
        ({"pkg/__init__.py": ""}, ["."]),
        ({"pyproject.toml": "[tool.setuptools.packages.find]\nwhere = ['lib']\n", "lib/p/__init__.py": ""}, ["lib"]),
        ({"pyproject.toml": "[tool.setuptools]\npackage-dir = {'' = 'code'}\n", "code/p.py": ""}, ["code"]),
        ({"pyproject.toml": "[tool.hatch.build.targets.wheel]\npackages = ['source/p']\n", "source/p/x.py": ""},
         ["source"]),
        ({"pyproject.toml": "[tool.poetry]\npackages = [{include = 'p', from = 'lib'}]\n", "lib/p/x.py": ""},
         ["lib"]),
        # A declared folder outside the worktree or missing is not put on the path.
        ({"pyproject.toml": "[tool.setuptools.packages.find]\nwhere = ['..', 'gone', 'src']\n", "src/p.py": ""},
         ["src"]),
    ],
)
def test_source_roots_come_from_packaging_config_else_src_else_the_worktree(
    tmp_path: Path, files: dict[str, str], roots: list[str]
) -> None:
    work = tree(tmp_path / "work", files)
    assert source_roots(work) == roots
    found = discover(work, configured=["python", "-m", "pytest"])
    assert found.env["PYTHONPATH"].split(os.pathsep)[: len(roots)] == [
        str(work) if root == "." else str(work / root) for root in roots
    ]


# ---------------------------------------------------------------- the test phase on the realistic project


async def run_test_phase(cwd: Path, main: Path | None = None, log: list[str] | None = None) -> Task:
    """The test phase in `cwd`, a worktree of `main` (default: `cwd` itself); its progress messages go to `log`."""
    task = Task(id="test", phase="test", agent="pytest", config=PhaseConfig(agent="pytest"))
    wf = workflow(cwd, [task])
    wf.repo = str(main or cwd)
    engine = Engine(config=FAST, agents=agent_factories())
    if log is not None:
        engine.bus.add_sink(lambda event: log.append(event.message) if isinstance(event, Progress) else None)
    return (await engine.run(wf)).task("test")


async def test_the_test_phase_runs_in_the_projects_own_virtualenv(realistic_project: RealisticProject) -> None:
    log: list[str] = []
    done = await run_test_phase(realistic_project.root, log=log)
    # `taxrates` is only in the project's .venv: with ADW's interpreter the passing test could not import it.
    assert done.state is TaskState.FAILED, done.reason
    chosen = f"venv: the worktree's virtualenv {realistic_project.venv}"
    assert done.summary == f"1 passed, 1 failed ({chosen})"
    assert log[0] == (
        f"tests run with `{realistic_project.python} -m pytest -q` (the worktree's virtualenv {realistic_project.venv};"
        " worktree sources first on PYTHONPATH: src)"
    )
    [finding] = done.findings
    assert (finding.path, finding.severity) == (FAILING_TEST.split("::")[0], Severity.ERROR)
    assert done.outputs["environment"]["source_roots"] == ["src"]
    assert not (realistic_project.root / ".pytest_cache").exists()


def imported_total(python: Path, cwd: Path) -> list[str]:
    """What `python` run in `cwd` with no PYTHONPATH imports: `total([10.0, 5.0])` and the module's file."""
    probe = "import shop.pricing as p; print(p.total([10.0, 5.0]), p.__file__)"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([str(python), "-c", probe], cwd=cwd, capture_output=True, text=True, check=True,
                          env=env).stdout.split()


async def test_tests_in_a_worktree_import_the_worktrees_code_not_the_main_worktrees(
    realistic_project: RealisticProject,
) -> None:
    main = realistic_project.root
    worktree = main.parent / "wt"
    run_git(main, "worktree", "add", "-q", "-b", "feature", str(worktree))
    # The same function gives different results in main and in the worktree, and the worktree's test says so.
    realistic_project.write(
        "src/shop/pricing.py",
        "from taxrates import VAT\n\n\ndef total(prices: list[float]) -> float:\n"
        "    return round(sum(prices) * (1 + VAT) - 1, 2)  # one off: a loyalty discount\n",
        worktree,
    )
    realistic_project.write(
        "tests/test_pricing.py",
        "from shop.pricing import total\n\n\n"
        "def test_total_adds_vat() -> None:\n    assert total([10.0, 5.0]) == 17.0\n",
        worktree,
    )
    # The trap: the main worktree's venv imports the main worktree's code, editable-installed from there.
    assert imported_total(realistic_project.python, worktree) == ["18.0", str(main / "src/shop/pricing.py")]

    done = await run_test_phase(worktree, main)
    assert done.summary.startswith("1 passed, 1 failed (venv: the main worktree's virtualenv"), done.reason
    assert [f.message.split(":")[0] for f in done.findings] == [FAILING_TEST.split("::")[1]]
    assert PASSING_TEST.split("::")[1] not in json.dumps([f.model_dump() for f in done.findings])


async def test_with_nothing_to_run_the_tests_the_phase_fails_with_what_to_set(repo: Path) -> None:
    done = await run_test_phase(repo)
    assert done.state is TaskState.FAILED
    assert done.reason.startswith("found no way to run this repository's tests")
    assert "hint: set the command: test_command = " in done.reason and "Traceback" not in done.reason


async def test_a_failing_worktree_setup_fails_the_workflow_and_a_resume_sets_it_up_again(make_repo: MakeRepo) -> None:
    def config(code: str) -> str:
        setup = json.dumps([sys.executable, "-c", code])
        return f'[agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n\n[worktree]\nsetup = {setup}\n'

    project = make_repo({
        ".gitignore": ".adw.toml\nset-up\n",
        "specs/add.md": "# Add\n\n```python path=src/add.py\ndef add(a, b):\n    return a + b\n```\n",
    })
    (project / ".adw.toml").write_text(config("import sys; print('cannot sync'); sys.exit(3)"))
    engine = await open_engine(project)
    [wf] = await engine.run_all(await sdlc_workflows(project, [project / "specs/add.md"], engine.config))
    assert wf.state is TaskState.FAILED
    created = wf.task("worktree")
    assert created.state is TaskState.FAILED
    assert created.reason == (
        f"the worktree setup command `{sys.executable} -c import sys; print('cannot sync'); sys.exit(3)` exited"
        " with 3: cannot sync; nothing was built or tested, and the worktree was removed\n"
        "  hint: fix [tool.adw.worktree] setup, then resume the workflow"
    )
    assert all(wf.task(phase).state is not TaskState.SUCCEEDED for phase in ("build", "test", "commit"))
    assert not (project.parent / "repo.worktrees/add").exists()

    (project / ".adw.toml").write_text(config("import pathlib; pathlib.Path('set-up').write_text('yes')"))
    resumed = await engine.run(engine.prepare_resume(wf.id))
    assert resumed.state is TaskState.SUCCEEDED, [(t.id, t.reason) for t in resumed.tasks if t.reason]
    assert (Path(resumed.cwd) / "set-up").read_text() == "yes"


async def test_a_runner_other_than_pytest_is_judged_by_its_exit_status_with_its_output(make_repo: MakeRepo) -> None:
    makefile = "test:\n\t@echo checking the widgets\n\t@echo 'widget 3 is broken' >&2\n\t@exit 1\n"
    project = make_repo({"Makefile": makefile})
    done = await run_test_phase(project)
    assert done.state is TaskState.FAILED and done.findings == []
    assert done.reason.startswith("make exited with status 2: ") and "widget 3 is broken" in done.reason
    assert done.summary == "failed (make: the Makefile's test target found and `make` is installed)"
    (project / "Makefile").write_text("test:\n\t@echo all widgets work\n")
    done = await run_test_phase(project)
    assert done.state is TaskState.SUCCEEDED
    assert done.summary == "make passed (make: the Makefile's test target found and `make` is installed)"
