"""The REST calls' transport: one httpx client per forge, its errors turned into messages a user can act on,
conditional GETs (ETag / If-None-Match) so that polling what did not change costs the forge nothing, and paced
writes: many workflows opening pull requests and commenting at once (`adw sdlc --pr` of many specs) go, beyond a
first few, one a second per forge and login, as GitHub asks of many writes, and a write the forge refused for its
rate limits (so it changed nothing) is sent again once the wait it names is short."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from adw.errors import AdwError
from adw.forge.auth import Credentials, login_hint
from adw.forge.remotes import Forge

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_ETAG_ENTRIES = 512  # a few per branch: enough for every worktree's PR and checks
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_WRITE_SPACING = 1.0  # seconds between two writes of one login to one forge beyond a burst, as GitHub asks
_WRITE_BURST = 10.0  # one workflow's pull request and comment, or a few at once, never wait
_WAIT_AT_MOST = 120.0  # a refused write waits this long at most for its retry; a longer limit fails, saying when
_WRITE_ATTEMPTS = 3
_SECONDARY_WAIT = 60.0  # GitHub's advice for a secondary rate limit that names no wait: a minute


@dataclass
class _Pace:
    """The writes of one login to one forge, from every ForgeHttp of this process: a token bucket. Its tokens go
    negative as writers take turns: each reserves its turn before it awaits, so concurrent writers of one event
    loop queue up without a lock (which would tie the bucket to one loop)."""

    tokens: float = _WRITE_BURST
    at: float = field(default_factory=time.monotonic)

    def turn(self) -> float:
        """Take the next turn; the seconds to wait before it."""
        now = time.monotonic()
        self.tokens = min(_WRITE_BURST, self.tokens + (now - self.at) / _WRITE_SPACING) - 1
        self.at = now
        return max(0.0, -self.tokens * _WRITE_SPACING)

    def hold(self, wait: float) -> None:
        """The forge refused a write for its limits: the next turn comes in `wait` seconds, then one a second."""
        self.tokens = min(self.tokens, 1 - wait / _WRITE_SPACING)


_paces: dict[tuple[str, str], _Pace] = {}  # by (API URL, credentials' source)


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
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            if method in _WRITES and (turn_in := self._pace.turn()):
                await asyncio.sleep(turn_in)
            response = await self._send(method, path, json, params, headers)
            lifts = _limit_lifts(response)
            if lifts is None or method not in _WRITES or lifts[0] > _WAIT_AT_MOST or attempt == _WRITE_ATTEMPTS:
                break
            self._pace.hold(lifts[0])
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

    async def _send(
        self, method: str, path: str, json: Any, params: dict[str, str] | None, headers: dict[str, str]
    ) -> httpx.Response:
        try:
            return await self._client.request(method, path.lstrip("/"), json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ForgeError(
                f"cannot reach {self.forge.api_url}: {exc or type(exc).__name__}",
                "check the network (and a proxy in HTTPS_PROXY), or [tool.adw.forge] api_url",
            ) from None

    @property
    def _pace(self) -> _Pace:
        return _paces.setdefault((self.forge.api_url, self.credentials.source), _Pace())

    def _error(self, response: httpx.Response, what: str) -> ForgeError:
        status, host = response.status_code, self.forge.host
        detail = _message(response)
        source = self.credentials.source
        if (lifts := _limit_lifts(response)) is not None:
            return ForgeError(
                f"{host} is rate-limiting these calls ({status}){lifts[1]}",
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


def _limit_lifts(response: httpx.Response) -> tuple[float, str] | None:
    """When a call the forge refused for its rate limits may go again (None: it was not refused so): the seconds
    from now and the words that say so. Retry-After, else the limit's reset (GitHub's X-RateLimit-Reset, GitLab's
    RateLimit-Reset: epoch seconds), else GitHub's minute for a secondary limit, which names no time."""
    status = response.status_code
    limited = response.headers.get("X-RateLimit-Remaining") == "0" or "rate limit" in response.text.lower()
    if not (status == 429 or (status == 403 and limited)):
        return None
    retry = response.headers.get("Retry-After", "")
    if retry.isdigit():
        return float(retry), f"; retry after {retry}s"
    for header in ("X-RateLimit-Reset", "RateLimit-Reset"):
        if (value := response.headers.get(header, "")).isdigit():
            at = int(value)
            wait = max(0.0, at - time.time())
            return wait, f"; the limit resets at {time.strftime('%H:%M:%S UTC', time.gmtime(at))} (in {wait:.0f}s)"
    return _SECONDARY_WAIT, ""
