"""Precision of the first rank: glued words stay whole, and the line opened is the definition the task is about."""

from __future__ import annotations

import pytest

from adw.scouts import engine, scout
from tests.conftest import MakeRepo

CLI = """import click


class CertParamType(click.ParamType):
    \"\"\"Option type for the certificate: a file, an SSL context or a generated one.\"\"\"

    def convert(self, value, param, ctx):
        if value == "adhoc":
            require("cryptography")
        return value


@click.command("run")
@click.option("--cert", type=CertParamType())
def run_command(host, port, cert):
    \"\"\"Run a local development server.\"\"\"
    serve(host, port, ssl_context=cert)
"""


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_STATES", {})


@pytest.mark.parametrize(
    ("task", "glued", "part"),
    [("Add SameSite option", "samesite", "site"), ("Fix HostName lookup", "hostname", "host"),
     ("Keep fileName on upload", "filename", "file")],
)  # fmt: skip
async def test_a_glued_word_the_code_writes_as_one_is_not_split(
    make_repo: MakeRepo, task: str, glued: str, part: str
) -> None:
    noise = f"def {part}_packages({part}_dir):\n    {part} = find_{part}({part}_dir)\n    return [{part}, {part}_dir]\n"
    meant = f'def set_option(response, key, value, {glued}="lax"):\n    response.options[key] = (value, {glued})\n'
    root = make_repo({"app/meant.py": meant, "app/noise.py": noise}, name="split")
    report = await scout(task, root)
    assert report.files == ["app/meant.py"]
    # Where the code does not write the compound, its parts still count.
    plain = make_repo({"app/noise.py": noise}, name="plain")
    assert (await scout(task, plain)).files == ["app/noise.py"]


async def test_the_line_is_the_definition_whose_body_the_task_is_about(make_repo: MakeRepo) -> None:
    root = make_repo({"app/cli.py": CLI, "app/serve.py": "def serve(host, port, ssl_context):\n    return host\n"})
    (location,) = [loc for loc in (await scout("Fix --cert adhoc", root)).locations if loc.path == "app/cli.py"]
    lines = CLI.splitlines()
    assert lines[location.line - 1].strip().startswith("def convert(")  # not the class, not run_command
    assert location.reason == "method `convert` matches adhoc, cert"
    # A task about the command itself still opens the command.
    (location,) = [loc for loc in (await scout("run command serve", root)).locations if loc.path == "app/cli.py"]
    assert lines[location.line - 1].startswith("def run_command(")


async def test_a_definition_named_exactly_as_the_task_quotes_it_comes_first(make_repo: MakeRepo) -> None:
    urls = (
        "def escape(string, safe):\n"
        '    """Quote the characters that are not safe."""\n'
        "    return quote(string, safe)\n\n\n"
        "def keep(string):\n"
        "    return escape(string, SAFE)\n"
    )
    files = {f"lib/m{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(6)}
    files |= {"lib/quoting.py": "def quote(string, safe):\n    return ''.join(c for c in string if c in safe)\n"}
    root = make_repo({**files, "lib/urls.py": urls})
    # Unquoted, "quote" is one word of the task: the file matching more of it leads.
    assert (await scout("Make quote keep safe characters", root)).files[0] == "lib/urls.py"
    # Quoted, it names the definition the task is about.
    assert (await scout("Make `quote` keep safe characters", root)).files[0] == "lib/quoting.py"
