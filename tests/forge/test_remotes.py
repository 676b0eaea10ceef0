"""Forge detection from real remote URL forms (ssh, scp-like, https with users, tokens and ports, git://,
ssh-over-443 aliases, GitLab subgroups), and the `[tool.adw.forge]` host/kind of a self-hosted forge."""

from __future__ import annotations

from pathlib import Path

import pytest

from adw.config import ForgeConfig, load_config
from adw.errors import AdwError
from adw.forge.remotes import detect, forge_of, parse_remote, redact
from tests.conftest import MakeRepo, run_git

# url, kind, host, project, web_url, api_url
TABLE = [
    (
        "https://github.com/octo/widget.git",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "https://github.com/octo/widget",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "https://github.com/octo/widget/",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "git@github.com:octo/widget.git",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    ("github.com:octo/widget", "github", "github.com", "octo/widget", "https://github.com", "https://api.github.com"),
    (
        "ssh://git@github.com/octo/widget.git",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "ssh://git@ssh.github.com:443/octo/widget.git",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "git+ssh://git@github.com/octo/widget.git",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "git://github.com/octo/widget.git",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "https://x-access-token:ghs_SECRET@github.com/octo/widget.git",
        "github",
        "github.com",
        "octo/widget",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "https://GitHub.com/Octo/Widget.git",
        "github",
        "github.com",
        "Octo/Widget",
        "https://github.com",
        "https://api.github.com",
    ),
    # the predecessor's `.rstrip(".git")` made these `widge` and `gi`
    (
        "git@github.com:octo/widget.git.git",
        "github",
        "github.com",
        "octo/widget.git",
        "https://github.com",
        "https://api.github.com",
    ),
    (
        "https://github.com/octo/git.git",
        "github",
        "github.com",
        "octo/git",
        "https://github.com",
        "https://api.github.com",
    ),
    # GitHub Enterprise: named like its provider, with an https port kept for the web and the API
    (
        "https://github.corp.example:8443/team/app.git",
        "github",
        "github.corp.example",
        "team/app",
        "https://github.corp.example:8443",
        "https://github.corp.example:8443/api/v3",
    ),
    (
        "ssh://git@github.corp.example:2222/team/app.git",
        "github",
        "github.corp.example",
        "team/app",
        "https://github.corp.example",
        "https://github.corp.example/api/v3",
    ),
    # GitLab, subgroups, self-hosted named like its provider, http
    (
        "git@gitlab.com:group/sub/deeper/app.git",
        "gitlab",
        "gitlab.com",
        "group/sub/deeper/app",
        "https://gitlab.com",
        "https://gitlab.com/api/v4",
    ),
    (
        "https://gitlab.com/group/app.git",
        "gitlab",
        "gitlab.com",
        "group/app",
        "https://gitlab.com",
        "https://gitlab.com/api/v4",
    ),
    (
        "https://oauth2:glpat-SECRET@gitlab.com/group/app.git",
        "gitlab",
        "gitlab.com",
        "group/app",
        "https://gitlab.com",
        "https://gitlab.com/api/v4",
    ),
    (
        "ssh://git@altssh.gitlab.com:443/group/app.git",
        "gitlab",
        "gitlab.com",
        "group/app",
        "https://gitlab.com",
        "https://gitlab.com/api/v4",
    ),
    (
        "git@gitlab.gnome.org:GNOME/gtk.git",
        "gitlab",
        "gitlab.gnome.org",
        "GNOME/gtk",
        "https://gitlab.gnome.org",
        "https://gitlab.gnome.org/api/v4",
    ),
    (
        "http://gitlab.lan:8080/team/app.git",
        "gitlab",
        "gitlab.lan",
        "team/app",
        "http://gitlab.lan:8080",
        "http://gitlab.lan:8080/api/v4",
    ),
    # Bitbucket Cloud
    (
        "https://someone@bitbucket.org/workspace/repo-slug.git",
        "bitbucket",
        "bitbucket.org",
        "workspace/repo-slug",
        "https://bitbucket.org",
        "https://api.bitbucket.org/2.0",
    ),
    (
        "git@bitbucket.org:workspace/repo-slug.git",
        "bitbucket",
        "bitbucket.org",
        "workspace/repo-slug",
        "https://bitbucket.org",
        "https://api.bitbucket.org/2.0",
    ),
    (
        "ssh://git@altssh.bitbucket.org:443/workspace/repo-slug.git",
        "bitbucket",
        "bitbucket.org",
        "workspace/repo-slug",
        "https://bitbucket.org",
        "https://api.bitbucket.org/2.0",
    ),
]


@pytest.mark.parametrize(("url", "kind", "host", "project", "web_url", "api_url"), TABLE)
def test_detects_the_forge_of_each_remote_form(
    url: str, kind: str, host: str, project: str, web_url: str, api_url: str
) -> None:
    forge = forge_of(url, ForgeConfig())
    assert (forge.kind, forge.host, forge.project, forge.web_url, forge.api_url) == (
        kind,
        host,
        project,
        web_url,
        api_url,
    )
    assert "SECRET" not in forge.remote_url
    assert not forge.configured


@pytest.mark.parametrize(
    "url",
    [
        "/srv/git/app.git",
        "../app",
        "./app.git",
        "file:///srv/git/app.git",
        "~/repos/app.git",
        "https://github.com/just-a-host",
        "ssh://git@example.com/~user/app.git",
    ],
)
def test_local_paths_and_urls_without_a_project_are_not_forges(url: str) -> None:
    with pytest.raises(AdwError) as caught:
        forge_of(url, ForgeConfig())
    assert "not on a forge" in caught.value.message
    assert "git remote add" in caught.value.hint


def test_an_unknown_host_asks_for_its_kind_in_the_configuration() -> None:
    with pytest.raises(AdwError) as caught:
        forge_of("git@git.corp.example:team/app.git", ForgeConfig())
    assert "git.corp.example" in caught.value.message
    assert 'host = "git.corp.example"' in caught.value.hint and "kind" in caught.value.hint


def test_a_configured_self_hosted_host_and_api_url() -> None:
    config = ForgeConfig(host="git.corp.example", kind="gitlab")
    forge = forge_of("ssh://git@git.corp.example:2222/team/sub/app.git", config)
    assert (forge.kind, forge.configured, forge.api_url) == ("gitlab", True, "https://git.corp.example/api/v4")
    assert forge.project_id == "team%2Fsub%2Fapp"
    custom = forge_of(
        "https://git.corp.example/team/app",
        ForgeConfig(host="git.corp.example", kind="github", api_url="https://api.corp.example/v3/"),
    )
    assert (custom.kind, custom.api_url) == ("github", "https://api.corp.example/v3")
    # the configured host speaks only of itself: another remote is detected as usual
    assert forge_of("git@github.com:octo/widget.git", config).kind == "github"


def test_kind_alone_names_the_remotes_host_and_host_alone_is_an_error() -> None:
    assert forge_of("https://code.example/team/app.git", ForgeConfig(kind="gitlab")).kind == "gitlab"
    with pytest.raises(AdwError) as caught:
        forge_of("https://code.example/team/app.git", ForgeConfig(host="code.example"))
    assert "without its kind" in caught.value.message


def test_redact_hides_the_password_of_a_url() -> None:
    assert redact("https://user:tok@host/a/b.git") == "https://user:***@host/a/b.git"
    assert redact("git@host:a/b.git") == "git@host:a/b.git"


def test_parse_keeps_a_port_for_the_web_only_when_the_remote_is_https() -> None:
    assert parse_remote("ssh://git@h.example:2222/a/b").web_port is None
    assert parse_remote("https://h.example:8443/a/b").web_port == 8443


def test_issue_urls_follow_each_forge() -> None:
    assert forge_of("git@github.com:o/r.git", ForgeConfig()).issue_url(7) == "https://github.com/o/r/issues/7"
    assert forge_of("git@gitlab.com:g/r.git", ForgeConfig()).issue_url(7) == "https://gitlab.com/g/r/-/issues/7"


def test_forge_configuration_is_read_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.adw.forge]\nhost = "git.corp.example"\nkind = "gitlab"\nremote = "upstream"\n', encoding="utf-8"
    )
    forge = load_config(tmp_path).forge
    assert (forge.host, forge.kind, forge.remote) == ("git.corp.example", "gitlab", "upstream")
    (tmp_path / "pyproject.toml").write_text('[tool.adw.forge]\nkind = "gitea"\n', encoding="utf-8")
    with pytest.raises(AdwError) as caught:
        load_config(tmp_path)
    assert "forge.kind" in caught.value.message


async def test_detect_reads_the_remote_of_the_repository(make_repo: MakeRepo) -> None:
    root = make_repo()
    with pytest.raises(AdwError) as caught:
        await detect(root, ForgeConfig())
    assert "has no remote" in caught.value.message and "git remote add" in caught.value.hint
    run_git(root, "remote", "add", "upstream", "git@gitlab.com:group/app.git")
    forge = await detect(root, ForgeConfig())  # the only remote, though not named origin
    assert (forge.kind, forge.remote) == ("gitlab", "upstream")
    run_git(root, "remote", "add", "origin", "https://github.com/octo/widget.git")
    assert (await detect(root, ForgeConfig())).kind == "github"
    # insteadOf rewrites apply, as for git itself
    run_git(root, "config", "url.git@bitbucket.org:.insteadOf", "bb:")
    run_git(root, "remote", "set-url", "origin", "bb:ws/repo.git")
    assert (await detect(root, ForgeConfig())).project == "ws/repo"
    with pytest.raises(AdwError):
        await detect(root, ForgeConfig(remote="nope"))
