"""The scouts on a small web framework with known answers, the report shape, caching and safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adw.cli import main
from adw.scouts import ScoutReport, engine, scout
from adw.scouts.corpus import MAX_FILE_BYTES, read_text
from tests.conftest import MakeRepo, run_git

TASK = "session cookie is not marked secure when SESSION_COOKIE_SECURE is set"

WEBAPP = {
    "README.md": "# webapp\n\nA tiny web framework.\n",
    "pyproject.toml": '[project]\nname = "webapp"\n\n[tool.webapp]\nsession_cookie_secure = true\n',
    ".env.example": "DATABASE_URL=sqlite://\nSESSION_COOKIE_SECURE=1\n",
    "src/webapp/__init__.py": 'from webapp.app import create_app\n\n__all__ = ["create_app"]\n',
    "src/webapp/app.py": (
        "from webapp.routing import Router\n"
        "from webapp.sessions import SecureCookieSessionInterface\n\n\n"
        "def create_app(config=None):\n"
        '    """Build the application object."""\n'
        "    return (Router(), SecureCookieSessionInterface(), config)\n"
    ),
    "src/webapp/sessions.py": (
        '"""Sessions stored in signed cookies."""\n\n\n'
        "class SecureCookieSessionInterface:\n"
        '    """Store the session in a signed cookie."""\n\n'
        "    def get_cookie_name(self, app):\n"
        '        return app.config["SESSION_COOKIE_NAME"]\n\n'
        "    def get_cookie_secure(self, app):\n"
        '        """Whether the session cookie is only sent over HTTPS."""\n'
        '        return app.config["SESSION_COOKIE_SECURE"]\n\n'
        "    def save_session(self, app, session, response):\n"
        "        secure = self.get_cookie_secure(app)\n"
        "        response.set_cookie(self.get_cookie_name(app), session, secure=secure)\n"
    ),
    "src/webapp/routing.py": (
        "class Router:\n"
        '    """Map URLs to view functions."""\n\n'
        "    def add_route(self, rule, view):\n"
        "        self.rules.append((rule, view))\n"
    ),
    "src/webapp/templates.py": "def render_template(name, **context):\n    return name.format(**context)\n",
    "src/webapp/config.py": (
        'DEFAULTS = {\n    "SESSION_COOKIE_NAME": "session",\n    "SESSION_COOKIE_SECURE": False,\n}\n'
    ),
    "tests/test_sessions.py": (
        "from webapp.sessions import SecureCookieSessionInterface\n\n\n"
        "def test_secure_flag():\n"
        "    assert SecureCookieSessionInterface()\n"
    ),
    "tests/test_routing.py": ("from webapp.routing import Router\n\n\ndef test_add_route():\n    assert Router()\n"),
    "docs/sessions.md": (
        "# Sessions\n\nHow sessions work.\n\n## Secure cookies\n\n"
        "Set `SESSION_COOKIE_SECURE` to mark the cookie secure; see `get_cookie_secure`.\n"
    ),
    "docs/routing.md": "# Routing\n\nRules and views.\n",
}


@pytest.fixture
def webapp(make_repo: MakeRepo) -> Path:
    return make_repo(WEBAPP, name="webapp")


def _location(report: ScoutReport, path: str) -> dict[str, object]:
    return next(loc.model_dump() for loc in report.locations if loc.path == path)


def _inside(root: Path, path: str) -> bool:
    return (root / path).resolve().is_relative_to(root.resolve())


def _line_text(root: Path, path: str, line: int) -> str:
    return (root / path).read_text(encoding="utf-8").splitlines()[line - 1]


async def test_implementation_scout_ranks_the_defining_file_first_with_its_definition_line(
    webapp: Path,
) -> None:
    report = await scout(TASK, webapp)
    assert report.files[0] == "src/webapp/sessions.py"
    first = report.locations[0]
    assert first.path == "src/webapp/sessions.py" and "implementation" in first.scouts
    assert "def get_cookie_secure" in _line_text(webapp, first.path, first.line)
    assert "get_cookie_secure" in first.reason
    assert "src/webapp/routing.py" not in report.files[:3]


async def test_groups_keep_tests_docs_and_configuration_out_of_files(webapp: Path) -> None:
    report = await scout(TASK, webapp)
    assert report.tests[0] == "tests/test_sessions.py"
    assert report.docs[0] == "docs/sessions.md"
    assert {"pyproject.toml", ".env.example"} <= set(report.config)
    assert not set(report.files) & {*report.tests, *report.docs, *report.config}
    assert report.count == len(report.files)
    kinds = [loc.path for loc in report.locations]
    assert kinds[: len(report.files)] == report.files  # source locations come first


async def test_tests_scout_links_the_test_to_the_code_it_imports(webapp: Path) -> None:
    location = _location(await scout(TASK, webapp), "tests/test_sessions.py")
    assert "tests" in location["scouts"]  # type: ignore[operator]
    assert "src/webapp/sessions.py" in str(location["reason"])


async def test_documentation_scout_opens_the_matching_section(webapp: Path) -> None:
    location = _location(await scout(TASK, webapp), "docs/sessions.md")
    assert _line_text(webapp, "docs/sessions.md", int(location["line"])) == "## Secure cookies"  # type: ignore[call-overload]


async def test_configuration_scout_points_at_the_key(webapp: Path) -> None:
    report = await scout(TASK, webapp)
    env = _location(report, ".env.example")
    assert _line_text(webapp, ".env.example", int(env["line"])) == "SESSION_COOKIE_SECURE=1"  # type: ignore[call-overload]
    settings = _location(report, "src/webapp/config.py")
    assert "configuration" in settings["scouts"]  # type: ignore[operator]


async def test_dependency_and_architecture_scouts_reach_the_app_factory(webapp: Path) -> None:
    report = await scout(TASK, webapp)
    app = _location(report, "src/webapp/app.py")
    assert {"dependencies", "architecture"} <= set(app["scouts"])  # type: ignore[arg-type]
    assert "src/webapp/templates.py" not in report.files  # no term, no import: neighbours reach no further


async def test_repeat_is_cached_and_any_change_invalidates(webapp: Path) -> None:
    first = await scout(TASK, webapp)
    assert await scout(TASK, webapp) is first
    (webapp / "src/webapp/helpers.py").write_text(
        "def mark_session_cookie_secure(response):\n    response.secure = True  # SESSION_COOKIE_SECURE\n"
    )
    untracked = await scout(TASK, webapp)
    assert untracked is not first and "src/webapp/helpers.py" in untracked.files
    (webapp / "src/webapp/helpers.py").write_text("def unrelated():\n    return 1\n")
    edited = await scout(TASK, webapp)
    assert edited is not untracked and "src/webapp/helpers.py" not in edited.files
    run_git(webapp, "add", "-A")
    staged = await scout(TASK, webapp)
    assert staged is not edited and staged.files == edited.files


async def test_disk_cache_serves_a_fresh_process(webapp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await scout(TASK, webapp)
    monkeypatch.setattr(engine, "_STATES", {})
    monkeypatch.setattr(engine, "_REPOS", {})
    again = await scout(TASK, webapp)
    assert again == first and again is not first


async def test_binary_huge_non_utf8_and_unreadable_files_are_skipped(webapp: Path) -> None:
    secret = b"session cookie secure SESSION_COOKIE_SECURE get_cookie_secure\n"
    (webapp / "src/webapp/blob.py").write_bytes(b"\0\x01" + secret * 50)
    (webapp / "src/webapp/huge.py").write_bytes(secret * (MAX_FILE_BYTES // len(secret) + 1))
    (webapp / "src/webapp/latin1.py").write_bytes(b"# caf\xe9\n" + secret)
    (webapp / "src/webapp/fifo.py").unlink(missing_ok=True)
    os.mkfifo(webapp / "src/webapp/fifo.py")
    (webapp / "src/webapp/dangling.py").symlink_to(webapp / "missing.py")
    report = await scout(TASK, webapp)
    reported = {loc.path for loc in report.locations}
    assert not reported & {f"src/webapp/{n}.py" for n in ("blob", "huge", "latin1", "fifo", "dangling")}
    assert report.files[0] == "src/webapp/sessions.py"


def test_read_text_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "locked.py").write_text("x = 1\n")
    (tmp_path / "locked.py").chmod(0)
    assert read_text(tmp_path, "ok.py") == b"x = 1\n"
    assert read_text(tmp_path, "missing.py") is None
    assert read_text(tmp_path, ".") is None
    if os.geteuid() != 0:  # root reads mode-000 files
        assert read_text(tmp_path, "locked.py") is None


async def test_paths_never_leave_the_repository(webapp: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.py").write_text("def session_cookie_secure():\n    return 'SESSION_COOKIE_SECURE'\n")
    (webapp / "src/webapp/link.py").symlink_to(outside / "leak.py")
    (webapp / "vendored").symlink_to(outside)
    run_git(webapp, "add", "-A")
    run_git(webapp, "commit", "-q", "-m", "links")
    report = await scout(TASK, webapp)
    for location in report.locations:
        assert not Path(location.path).is_absolute() and ".." not in Path(location.path).parts
        assert _inside(webapp, location.path)
    assert "src/webapp/link.py" not in {loc.path for loc in report.locations}


async def test_unicode_query_still_finds_the_code(webapp: Path) -> None:
    report = await scout("修复: la session cookie n’est pas « secure » ☕", webapp)
    assert report.files[0] == "src/webapp/sessions.py"


@pytest.mark.parametrize("task", ["zebra xylophone quasar", "☕ 修复", ""])
async def test_a_query_that_matches_nothing_gives_an_empty_well_formed_report(webapp: Path, task: str) -> None:
    report = await scout(task, webapp)
    assert report.task == task
    assert report.files == report.tests == report.docs == report.config == report.locations == []
    assert report.count == 0 and report.method and report.timestamp


async def test_top_limits_every_group(webapp: Path) -> None:
    report = await scout(TASK, webapp, top=1)
    assert len(report.files) == 1 and len(report.tests) <= 1 and len(report.docs) <= 1
    with pytest.raises(ValueError, match="top"):
        await scout(TASK, webapp, top=0)


def test_cli_prints_json_and_writes_relevant_files(webapp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(webapp), "scout", TASK, "--json", "--top", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {
        "task", "files", "tests", "docs", "config", "locations", "count", "method", "timestamp"
    }  # fmt: skip
    assert printed["files"][0] == "src/webapp/sessions.py" and printed["count"] == len(printed["files"]) <= 3
    assert set(printed["locations"][0]) == {"path", "line", "score", "scouts", "reason"}
    written = json.loads((webapp / "scout_outputs/relevant_files.json").read_text(encoding="utf-8"))
    assert written == printed
    assert run_git(webapp, "status", "--porcelain") == ""  # listed in info/exclude: not the user's work
    assert main(["-C", str(webapp), "scout", TASK]) == 0  # the output file must not invalidate the cache
    assert "src/webapp/sessions.py:" in capsys.readouterr().out.splitlines()[0]
    assert (webapp / ".git/info/exclude").read_text().splitlines().count("/scout_outputs/") == 1


def test_cli_worktree_flag_and_errors(webapp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scout", TASK, "--worktree", str(webapp), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"][0] == "src/webapp/sessions.py"
    assert main(["-C", str(tmp_path), "scout", TASK]) == 2
    assert "not inside a git repository" in capsys.readouterr().err
