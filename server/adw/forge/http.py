"""The REST calls' transport: one httpx client per forge, its errors turned into messages a user can act on,
and conditional GETs (ETag / If-None-Match) so that polling what did not change costs the forge nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx

from adw.errors import AdwError
from adw.forge.auth import Credentials, login_hint
from adw.forge.remotes import Forge

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_ETAG_ENTRIES = 512  # a few per branch: enough for every worktree's PR and checks


class ForgeError(AdwError):
    """A forge refused or failed a call. `status` is the HTTP status (0 when the forge was not reached)."""

    def __init__(self, message: str, hint: str = "", status: int = 0, *, editor_hint: str = "") -> None:
        super().__init__(message, hint, editor_hint)
        self.status = status


class ForgeHttp:
    """JSON over HTTP to `forge.api_url`, authenticated by `credentials`."""

    def __init__(self, forge: Forge, credentials: Credentials):
        self.forge = forge
        self.credentials = credentials
        name, value = credentials.header()
        self._client = httpx.AsyncClient(
            base_url=forge.api_url + "/",
            headers={name: value, "Accept": "application/json", "User-Agent": "adw"},
            timeout=_TIMEOUT,
            follow_redirects=True,
        )
        self._etags: dict[str, tuple[str, Any]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        what: str = "",
        cached: bool = False,
    ) -> Any:
        """The decoded JSON answer of `method path`; `what` names the object for a 404. `cached`: a GET sent
        with the ETag of its last answer, whose 304 returns that answer again."""
        key = f"{path}?{sorted((params or {}).items())}"
        headers = {}
        if cached and key in self._etags:
            headers["If-None-Match"] = self._etags[key][0]
        try:
            response = await self._client.request(method, path.lstrip("/"), json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ForgeError(
                f"cannot reach {self.forge.api_url}: {exc or type(exc).__name__}",
                "check the network (and a proxy in HTTPS_PROXY), or [tool.adw.forge] api_url",
            ) from None
        if response.status_code == 304 and key in self._etags:
            return self._etags[key][1]
        if response.status_code >= 400:
            raise self._error(response, what or path)
        data = response.json() if response.content else None
        etag = response.headers.get("ETag")
        if cached and etag:
            if len(self._etags) >= _ETAG_ENTRIES:
                self._etags.pop(next(iter(self._etags)))
            self._etags[key] = (etag, data)
        return data

    def _error(self, response: httpx.Response, what: str) -> ForgeError:
        status, host = response.status_code, self.forge.host
        detail = _message(response)
        source = self.credentials.source
        if status == 429 or (status == 403 and _rate_limited(response)):
            return ForgeError(
                f"{host} is rate-limiting these calls ({status}){_reset(response)}",
                "wait until then and run the command again; nothing was changed by the refused call",
                status,
            )
        if status == 401:
            return ForgeError(
                f"{host} refused the credentials from {source} (401: {detail or 'bad credentials'})",
                login_hint(self.forge),
                status,
            )
        if status == 403:
            return ForgeError(
                f"{host} forbids this to the credentials from {source} (403: {detail})",
                "give the token the scopes to read issues and write pull requests and comments (GitHub: repo; "
                "GitLab: api; Bitbucket: pullrequest:write, issue:write), or " + login_hint(self.forge),
                status,
            )
        if status == 404:
            return ForgeError(
                f"{host} has no {what} that the credentials from {source} can see (404)",
                f"check that {self.forge.web_url}/{self.forge.project} exists and that this login may read it",
                status,
            )
        return ForgeError(f"{host} refused {what} ({status}: {detail or response.reason_phrase})", "", status)


def _message(response: httpx.Response) -> str:
    """The forge's own words: GitHub `message` + `errors`, GitLab `message`/`error`, Bitbucket `error.message`."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if not isinstance(body, dict):
        return str(body)[:300]
    parts: list[str] = []
    message = body.get("message") or body.get("error_description") or body.get("error")
    if isinstance(message, dict):  # Bitbucket: {"type": "error", "error": {"message": …, "detail": …}}
        parts += [str(message.get("message", "")), str(message.get("detail", "") or "")]
    elif isinstance(message, list):  # GitLab 409/422: a list of sentences
        parts += [str(item) for item in message]
    elif message:
        parts.append(str(message))
    for error in body.get("errors", []) if isinstance(body.get("errors"), list) else []:
        parts.append(str(error.get("message") or error.get("code") or error) if isinstance(error, dict) else str(error))
    return "; ".join(part for part in parts if part)[:500]


def _rate_limited(response: httpx.Response) -> bool:
    return response.headers.get("X-RateLimit-Remaining") == "0" or "rate limit" in response.text.lower()


def _reset(response: httpx.Response) -> str:
    """When the limit lifts: GitHub's X-RateLimit-Reset / GitLab's RateLimit-Reset (epoch), or Retry-After."""
    now = time.time()
    for header in ("X-RateLimit-Reset", "RateLimit-Reset"):
        value = response.headers.get(header, "")
        if value.isdigit():
            at = int(value)
            clock = time.strftime("%H:%M:%S UTC", time.gmtime(at))
            return f"; the limit resets at {clock} (in {max(0, at - now):.0f}s)"
    retry = response.headers.get("Retry-After", "")
    return f"; retry after {retry}s" if retry.isdigit() else ""
