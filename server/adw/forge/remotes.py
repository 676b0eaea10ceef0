"""Which forge hosts a repository: its remote's URL parsed (ssh, scp-like, https, git, with ports and
credentials), and the host matched to GitHub, GitLab or Bitbucket, or to `[tool.adw.forge] host/kind`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel

from adw.config import ForgeConfig, ForgeKind
from adw.errors import AdwError, GitError
from adw.git.runner import git

# Hosts whose provider is known without configuration, and the ssh-over-443 aliases they document.
KNOWN_HOSTS: dict[str, ForgeKind] = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket"}
_ALIASES = {"ssh.github.com": "github.com", "altssh.gitlab.com": "gitlab.com", "altssh.bitbucket.org": "bitbucket.org"}
# `git@host:path` (no scheme; a `:` before any `/`): git's own rule for the scp-like syntax.
_SCP = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+):(?P<path>(?!//).*)$")
_SCHEMES = {"https", "http", "ssh", "git", "git+ssh", "ssh+git"}


@dataclass(frozen=True, slots=True)
class RemoteUrl:
    """A remote URL in parts: credentials dropped, `.git` and slashes trimmed from the path."""

    scheme: str  # https, http, ssh or git (scp-like is ssh)
    host: str  # lower case, an ssh-over-443 alias replaced by the forge's own host
    port: int | None
    path: str  # owner/name, or group/subgroup/name on GitLab

    @property
    def web_port(self) -> int | None:
        """The port of the forge's web and API server: an https/http remote's own; an ssh port is sshd's."""
        return self.port if self.scheme in ("https", "http") else None


def parse_remote(url: str) -> RemoteUrl:
    """Split a remote URL git accepts; ValueError (saying why) for a local path or anything without a host."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f"{redact(text)}: a {scheme}:// remote is not hosted on a forge")
        if not parts.hostname:
            raise ValueError(f"{redact(text)}: no host")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{redact(text)}: bad port") from None
        host, path = parts.hostname, unquote(parts.path)
        scheme = "ssh" if "ssh" in scheme else scheme
    else:
        found = _SCP.match(text)
        if not found or text.startswith(("/", ".", "~")):
            raise ValueError(f"{text}: a local path, not a forge")
        host, path, port, scheme = found["host"].strip("[]"), found["path"], None, "ssh"
    path = path.strip("/").removesuffix(".git").strip("/")  # `widget.git` → `widget`, never `widge`
    if path.startswith("~"):  # ssh://host/~user/repo: a home folder, not a forge project
        raise ValueError(f"{redact(text)}: a path in a home folder, not a forge project")
    if "/" not in path:
        raise ValueError(f"{redact(text)}: expected OWNER/NAME after the host, got {path!r}")
    host = host.lower()
    return RemoteUrl(scheme=scheme, host=_ALIASES.get(host, host), port=port, path=path)


def redact(url: str) -> str:
    """The URL without a password or token in its user part (https://user:TOKEN@host/…)."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


class Forge(BaseModel):
    """A repository's forge: what it is, where its web pages and API are, and the project's path there."""

    kind: ForgeKind
    host: str
    web_url: str  # https://github.com, https://git.corp.example:8443
    api_url: str
    project: str  # owner/name (GitLab: group/…/name; Bitbucket: workspace/slug)
    remote: str
    remote_url: str  # credentials redacted
    configured: bool  # [tool.adw.forge] named the host

    @property
    def owner(self) -> str:
        return self.project.rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.project.rpartition("/")[2]

    @property
    def project_id(self) -> str:
        """GitLab's URL-encoded project path (`group%2Fname`)."""
        return quote(self.project, safe="")

    def issue_url(self, number: int) -> str:
        middle = {"github": "issues", "gitlab": "-/issues", "bitbucket": "issues"}[self.kind]
        return f"{self.web_url}/{self.project}/{middle}/{number}"


def forge_of(url: str, config: ForgeConfig, remote: str = "origin") -> Forge:
    """The forge of remote URL `url`: a known host, the configured one, or a host named like its provider
    (`github.corp.example`, `gitlab.gnome.org`). AdwError (with what to configure) otherwise."""
    try:
        parsed = parse_remote(url)
    except ValueError as exc:
        raise AdwError(
            f"remote {remote!r} is not on a forge: {exc}",
            "push the repository to GitHub, GitLab or Bitbucket and add it as a remote "
            "(`git remote add origin URL`), or name another remote in [tool.adw.forge] remote",
        ) from None
    if config.host is not None and config.kind is None:
        raise AdwError(
            f"[tool.adw.forge] names host {config.host} without its kind",
            'add kind = "github", "gitlab" or "bitbucket"',
        )
    # `kind` alone speaks of the remote's host, whatever it is; with `host`, only of that host.
    configured = config.kind is not None and (
        config.host is None or config.host.lower() in (parsed.host, _with_port(parsed))
    )
    kind: ForgeKind | None = config.kind if configured else KNOWN_HOSTS.get(parsed.host)
    if kind is None:
        first = parsed.host.split(".")[0]
        kind = "github" if first == "github" else "gitlab" if first == "gitlab" else None
    if kind is None:
        raise AdwError(
            f"cannot tell which forge hosts {parsed.host} (remote {remote!r})",
            f'say it in [tool.adw.forge]: host = "{parsed.host}" and kind = "github", "gitlab" or "bitbucket"',
        )
    web_scheme = "http" if parsed.scheme == "http" else "https"
    web_url = f"{web_scheme}://{_with_port(parsed, web=True)}"
    return Forge(
        kind=kind,
        host=parsed.host,
        web_url=web_url,
        api_url=(config.api_url.rstrip("/") if configured and config.api_url else _api_url(kind, parsed, web_url)),
        project=parsed.path,
        remote=remote,
        remote_url=redact(url.strip()),
        configured=configured,
    )


def _with_port(parsed: RemoteUrl, web: bool = False) -> str:
    port = parsed.web_port if web else parsed.port
    return f"{parsed.host}:{port}" if port else parsed.host


def _api_url(kind: ForgeKind, parsed: RemoteUrl, web_url: str) -> str:
    if kind == "github":
        return "https://api.github.com" if parsed.host == "github.com" else f"{web_url}/api/v3"
    if kind == "gitlab":
        return f"{web_url}/api/v4"
    return "https://api.bitbucket.org/2.0"


async def detect(root: Path, config: ForgeConfig) -> Forge:
    """The forge of the repository at `root`, from `[tool.adw.forge] remote` (default origin; the only remote
    when there is just one). `git remote get-url` applies the user's `insteadOf` rewrites."""
    remotes = (await git("remote", cwd=root)).lines
    name = config.remote
    if name not in remotes:
        if len(remotes) != 1 or "remote" in config.model_fields_set:
            raise AdwError(
                f"the repository has no remote {name!r}"
                + (f" (its remotes: {', '.join(remotes)})" if remotes else " (it has no remote)"),
                "add it (`git remote add origin URL`) or name one in [tool.adw.forge] remote",
            )
        name = remotes[0]
    try:
        url = (await git("remote", "get-url", name, cwd=root)).stdout.strip()
    except GitError as exc:
        raise AdwError(f"cannot read the URL of remote {name!r}: {exc.stderr}", "check `git remote -v`") from None
    return forge_of(url, config, name)
