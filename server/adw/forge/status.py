"""Each branch's pull request and CI state, for the editor's Worktrees view, polled politely: a branch is asked
about at most once per `interval`, and each call is a conditional GET (ETag) that an unchanged answer makes
free on the forge's side. No forge or no login is a state to show, not an error."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from adw.config import ForgeConfig
from adw.errors import AdwError
from adw.forge.client import connect
from adw.forge.http import ForgeError
from adw.forge.providers import Checks, Provider, PullRequest
from adw.forge.remotes import Forge

POLL_INTERVAL = 60.0


class BranchReview(BaseModel):
    branch: str
    pull_request: PullRequest | None = None
    checks: Checks | None = None
    checked_at: float


class ReviewStatus(BaseModel):
    available: bool
    reason: str = ""  # why not, with what to do
    forge: Forge | None = None
    branches: list[BranchReview] = []


class ReviewWatch:
    """Keeps one provider (and so its ETag cache) and each branch's last answer between polls."""

    def __init__(self, interval: float = POLL_INTERVAL, env: Mapping[str, str] | None = None) -> None:
        self.interval = interval
        self.env = env
        self._provider: Provider | None = None
        self._key: tuple[str, ForgeConfig] | None = None
        self._cache: dict[str, BranchReview] = {}
        # No forge or no login, and when it was found: not looked for again (a spawn of `gh`) before `interval`.
        self._failed: tuple[tuple[str, ForgeConfig], str, float] | None = None

    async def aclose(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()
            self._provider = None

    async def status(self, root: Path, config: ForgeConfig, branches: list[str], refresh: bool = False) -> ReviewStatus:
        now = time.time()
        key = (str(root), config)
        if self._failed is not None and not refresh:
            failed_key, reason, at = self._failed
            if failed_key == key and now - at < self.interval:
                return ReviewStatus(available=False, reason=reason)
        try:
            provider = await self._connect(key, root, config)
        except AdwError as exc:
            self._failed = (key, str(exc), now)
            return ReviewStatus(available=False, reason=str(exc))
        self._failed = None
        found: list[BranchReview] = []
        try:
            for branch in branches:
                cached = self._cache.get(branch)
                if cached is None or refresh or now - cached.checked_at >= self.interval:
                    cached = self._cache[branch] = await self._ask(provider, branch, now)
                found.append(cached)
        except ForgeError as exc:
            if exc.status in (401, 403):
                await self.aclose()  # a new login is picked up on the next poll
            return ReviewStatus(available=False, reason=str(exc), forge=provider.forge)
        return ReviewStatus(available=True, forge=provider.forge, branches=found)

    def forget(self, branch: str) -> None:
        """The branch's pull request changed here (opened, updated): the next poll asks the forge again."""
        self._cache.pop(branch, None)

    async def _connect(self, key: tuple[str, ForgeConfig], root: Path, config: ForgeConfig) -> Provider:
        if self._provider is None or self._key != key:
            await self.aclose()
            self._provider = await connect(root, config, self.env)
            self._key, self._cache = key, {}
        return self._provider

    async def _ask(self, provider: Provider, branch: str, now: float) -> BranchReview:
        pr = await provider.find_pull_request(branch)
        checks = await provider.checks(pr) if pr is not None else None
        return BranchReview(branch=branch, pull_request=pr, checks=checks, checked_at=now)
