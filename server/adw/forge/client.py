"""A connected provider for a repository: its forge detected, credentials found, or one clear error."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from adw.config import ForgeConfig
from adw.errors import AdwError
from adw.forge.auth import editor_login_hint, login_hint, resolve
from adw.forge.http import ForgeHttp
from adw.forge.providers import PROVIDERS, Provider
from adw.forge.remotes import Forge, detect


class NotLoggedInError(AdwError):
    pass


async def connect_to(forge: Forge, env: Mapping[str, str] | None = None) -> Provider:
    credentials, tried = await resolve(forge, env)
    if credentials is None:
        # What was tried, without the CLI's flags (`gh auth token`): the editor shows this message too.
        ways = ", ".join(way.split(" --", 1)[0] for way in tried)
        raise NotLoggedInError(
            f"not logged in to {forge.host} ({forge.kind}): tried {ways}", login_hint(forge), editor_login_hint(forge)
        )
    return PROVIDERS[forge.kind](ForgeHttp(forge, credentials))


async def connect(
    root: Path,
    config: ForgeConfig,
    env: Mapping[str, str] | None = None,
) -> Provider:
    """The provider of the repository at `root`; the caller closes it (`await provider.aclose()`)."""
    return await connect_to(await detect(root, config), env)
