"""Authentication: the provider's CLI (stub `gh`/`glab` executables that record their argv) when installed and
logged in, else the environment's tokens; the token reaches the API and nothing else."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from adw.config import ForgeConfig
from adw.forge.auth import plan, resolve
from adw.forge.client import connect_to
from adw.forge.remotes import forge_of
from tests.forge.fakeforge import API_PATHS, serve


def stub(folder: Path, name: str, token: str, status: int = 0) -> Path:
    """An executable that appends its argv (one JSON list per call) to `<name>.argv` and prints `token`."""
    folder.mkdir(exist_ok=True)
    record = folder / f"{name}.argv"
    script = folder / name
    script.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"print({token!r})\nsys.exit({status})\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return record


def calls(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()] if record.exists() else []


def env_with(bin_dir: Path, **values: str) -> dict[str, str]:
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", **values}


async def test_gh_logged_in_gives_the_token_that_reaches_the_api(tmp_path: Path) -> None:
    record = stub(tmp_path / "bin", "gh", "gho_from_gh")
    with serve("github", "octo/widget") as fake:
        forge = forge_of(
            "git@github.com:octo/widget.git",
            ForgeConfig(host="github.com", kind="github", api_url=API_PATHS["github"](fake.base_url)),
        )
        fake.add_issue(1, "t", "b", [], [])
        provider = await connect_to(forge, env_with(tmp_path / "bin", GH_TOKEN="from-env"))
        try:
            await provider.issue(1)
        finally:
            await provider.aclose()
    assert calls(record) == [["auth", "token", "--hostname", "github.com"]]
    assert {r.headers["authorization"] for r in fake.requests} == {"Bearer gho_from_gh"}
    assert provider.http.credentials.source == "gh auth token --hostname github.com"


async def test_gh_not_logged_in_falls_back_to_the_environment(tmp_path: Path) -> None:
    record = stub(tmp_path / "bin", "gh", "", status=1)
    forge = forge_of("https://github.com/octo/widget", ForgeConfig())
    found, tried = await resolve(forge, env_with(tmp_path / "bin", GITHUB_TOKEN="ghp_env"))
    assert found is not None and found.source == "GITHUB_TOKEN" and found.token.get_secret_value() == "ghp_env"
    assert tried == ["gh auth token --hostname github.com", "GH_TOKEN", "GITHUB_TOKEN"]
    assert calls(record) == [["auth", "token", "--hostname", "github.com"]]


async def test_enterprise_hosts_ask_gh_for_their_own_host_and_read_enterprise_tokens(tmp_path: Path) -> None:
    record = stub(tmp_path / "bin", "gh", "", status=1)
    forge = forge_of("git@github.corp.example:team/app.git", ForgeConfig())
    found, _ = await resolve(forge, env_with(tmp_path / "bin", GH_ENTERPRISE_TOKEN="ent", GH_TOKEN="dotcom"))
    assert found is not None and found.source == "GH_ENTERPRISE_TOKEN"
    assert calls(record) == [["auth", "token", "--hostname", "github.corp.example"]]


async def test_glab_gives_its_token_for_the_host(tmp_path: Path) -> None:
    record = stub(tmp_path / "bin", "glab", "glpat-from-glab")
    forge = forge_of("git@gitlab.corp.example:team/app.git", ForgeConfig())
    found, _ = await resolve(forge, env_with(tmp_path / "bin", GITLAB_TOKEN="env"))
    assert found is not None and found.token.get_secret_value() == "glpat-from-glab"
    assert calls(record) == [["config", "get", "token", "--host", "gitlab.corp.example"]]


async def test_glab_without_a_token_falls_back_to_gitlab_token(tmp_path: Path) -> None:
    stub(tmp_path / "bin", "glab", "")  # `config get token` prints nothing when not logged in
    forge = forge_of("git@gitlab.com:g/app.git", ForgeConfig())
    found, _ = await resolve(forge, env_with(tmp_path / "bin", GITLAB_TOKEN="glpat-env"))
    assert found is not None and found.source == "GITLAB_TOKEN"


async def test_bitbucket_app_password_is_basic_auth(tmp_path: Path) -> None:
    with serve("bitbucket", "ws/repo") as fake:
        forge = forge_of(
            "git@bitbucket.org:ws/repo.git",
            ForgeConfig(host="bitbucket.org", kind="bitbucket", api_url=API_PATHS["bitbucket"](fake.base_url)),
        )
        fake.add_issue(2, "t", "b", ["bug"], [])
        env = env_with(tmp_path, BITBUCKET_USERNAME="me", BITBUCKET_APP_PASSWORD="app-pw")
        provider = await connect_to(forge, env)
        try:
            assert (await provider.issue(2)).labels == ["bug"]
        finally:
            await provider.aclose()
    expected = "Basic " + base64.b64encode(b"me:app-pw").decode()
    assert {r.headers["authorization"] for r in fake.requests} == {expected}


async def test_bitbucket_access_token_wins_over_a_pair(tmp_path: Path) -> None:
    forge = forge_of("git@bitbucket.org:ws/repo.git", ForgeConfig())
    found, _ = await resolve(
        forge, env_with(tmp_path, BITBUCKET_TOKEN="tok", BITBUCKET_EMAIL="a@b", BITBUCKET_API_TOKEN="x")
    )
    assert found is not None and found.username is None and found.header() == ("Authorization", "Bearer tok")


async def test_a_cli_that_is_not_installed_is_said_so(tmp_path: Path) -> None:
    _, tried = await resolve(forge_of("git@gitlab.com:g/app.git", ForgeConfig()), {"PATH": str(tmp_path)})
    assert tried == ["glab (not installed)", "GITLAB_TOKEN", "GITLAB_ACCESS_TOKEN"]


@pytest.mark.parametrize(
    ("url", "env", "method"),
    [
        ("git@github.com:o/r.git", {"GH_TOKEN": "SECRET1"}, "GH_TOKEN"),
        ("git@gitlab.com:o/r.git", {}, None),
        (
            "git@bitbucket.org:o/r.git",
            {"BITBUCKET_EMAIL": "a@b", "BITBUCKET_API_TOKEN": "SECRET2"},
            "BITBUCKET_EMAIL + BITBUCKET_API_TOKEN",
        ),
    ],
)
async def test_plan_says_how_it_will_authenticate_without_showing_the_token(
    tmp_path: Path, url: str, env: dict[str, str], method: str | None
) -> None:
    found = await plan(forge_of(url, ForgeConfig()), env_with(tmp_path, **env))
    assert found.method == method
    assert "SECRET" not in found.model_dump_json()
    assert found.login
