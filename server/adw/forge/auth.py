"""How ADW authenticates to a forge, the way its user already does: the provider's CLI when it is installed and
logged in (`gh auth token`, `glab config get token`), else a token from the environment.

The token is only ever sent to the forge's API; it is never printed, logged or put in a command line.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import Mapping

from pydantic import BaseModel, SecretStr

from adw.forge.remotes import Forge

_CLI_TIMEOUT = 20.0

# Environment variables per forge, first found wins; the first of each list is the one a hint names.
_GITHUB_ENV = ("GH_TOKEN", "GITHUB_TOKEN")
_GITHUB_ENTERPRISE_ENV = ("GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", *_GITHUB_ENV)
_GITLAB_ENV = ("GITLAB_TOKEN", "GITLAB_ACCESS_TOKEN")
# Bitbucket Cloud: an access token (Bearer), or a user with an app password or an Atlassian API token (Basic).
_BITBUCKET_TOKEN = "BITBUCKET_TOKEN"
_BITBUCKET_PAIRS = (("BITBUCKET_USERNAME", "BITBUCKET_APP_PASSWORD"), ("BITBUCKET_EMAIL", "BITBUCKET_API_TOKEN"))


class Credentials(BaseModel):
    """What authenticates the API calls. `source` says where it came from, for `adw forge` and for errors."""

    source: str  # "gh auth token --hostname github.com", "GITLAB_TOKEN", …
    token: SecretStr
    username: str | None = None  # set: HTTP Basic (Bitbucket app passwords); else a Bearer token

    def header(self) -> tuple[str, str]:
        if self.username is not None:
            pair = f"{self.username}:{self.token.get_secret_value()}".encode()
            return "Authorization", "Basic " + base64.b64encode(pair).decode()
        return "Authorization", f"Bearer {self.token.get_secret_value()}"


class AuthPlan(BaseModel):
    """`adw forge`: how ADW will authenticate, or what to run when it cannot."""

    method: str | None  # the source of the credentials, None when none was found
    tried: list[str]
    login: str  # the command or variables that log in


def login_hint(forge: Forge) -> str:
    if forge.kind == "github":
        return f"run `gh auth login --hostname {forge.host}`, or set {' or '.join(_github_names(forge))}"
    if forge.kind == "gitlab":
        return f"run `glab auth login --hostname {forge.host}`, or set GITLAB_TOKEN"
    return (
        "set BITBUCKET_USERNAME and BITBUCKET_APP_PASSWORD (an app password with the pullrequest:write and "
        "issue:write permissions), BITBUCKET_EMAIL and BITBUCKET_API_TOKEN, or BITBUCKET_TOKEN (an access token)"
    )


def editor_login_hint(forge: Forge) -> str:
    """The same for the editor: the language server inherits the editor's environment, so a token is set there."""
    if forge.kind == "github":
        return f"run gh auth login in a terminal, or start VS Code with {' or '.join(_github_names(forge))} set"
    if forge.kind == "gitlab":
        return "run glab auth login in a terminal, or start VS Code with GITLAB_TOKEN set"
    return ("start VS Code with BITBUCKET_TOKEN (an access token), or BITBUCKET_USERNAME and BITBUCKET_APP_PASSWORD, "
            "set")


def _github_names(forge: Forge) -> tuple[str, ...]:
    return _GITHUB_ENV if forge.host == "github.com" else (*_GITHUB_ENTERPRISE_ENV[:1], *_GITHUB_ENV[:1])


async def resolve(forge: Forge, env: Mapping[str, str] | None = None) -> tuple[Credentials | None, list[str]]:
    """The credentials for `forge`, and every way tried in order (for `adw forge` and for the error)."""
    env = os.environ if env is None else env
    tried: list[str] = []
    cli = _cli_command(forge)
    program = shutil.which(cli[0], path=env.get("PATH")) if cli is not None else None
    if cli is not None and program is None:
        tried.append(f"{cli[0]} (not installed)")
    elif cli is not None and program is not None:
        tried.append(" ".join(cli))
        token = await _cli_token(program, cli[1:], env)
        if token:
            return Credentials(source=" ".join(cli), token=SecretStr(token)), tried
    if forge.kind == "bitbucket":
        tried.append(_BITBUCKET_TOKEN)
        if env.get(_BITBUCKET_TOKEN):
            return Credentials(source=_BITBUCKET_TOKEN, token=SecretStr(env[_BITBUCKET_TOKEN])), tried
        for user, secret in _BITBUCKET_PAIRS:
            tried.append(f"{user} + {secret}")
            if env.get(user) and env.get(secret):
                source = f"{user} + {secret}"
                return Credentials(source=source, token=SecretStr(env[secret]), username=env[user]), tried
        return None, tried
    names = {"github": _GITHUB_ENV if forge.host == "github.com" else _GITHUB_ENTERPRISE_ENV, "gitlab": _GITLAB_ENV}
    for name in names[forge.kind]:
        tried.append(name)
        if env.get(name):
            return Credentials(source=name, token=SecretStr(env[name])), tried
    return None, tried


async def plan(forge: Forge, env: Mapping[str, str] | None = None) -> AuthPlan:
    found, tried = await resolve(forge, env)
    return AuthPlan(method=found.source if found else None, tried=tried, login=login_hint(forge))


def _cli_command(forge: Forge) -> list[str] | None:
    if forge.kind == "github":
        return ["gh", "auth", "token", "--hostname", forge.host]
    if forge.kind == "gitlab":
        return ["glab", "config", "get", "token", "--host", forge.host]
    return None


async def _cli_token(program: str, args: list[str], env: Mapping[str, str]) -> str:
    """The token the CLI prints, or "" when it is not logged in or does not answer."""
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            *args,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError:
        return ""
    try:
        async with asyncio.timeout(_CLI_TIMEOUT):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return ""
    lines = out.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if proc.returncode == 0 and lines else ""
