"""Opt-in, against the real forge: runs only when a token is given, read-only (an issue, the pull request
lookup of a branch, the CI state of an open pull request). Set, for instance:

    ADW_LIVE_REMOTE=https://github.com/OWNER/REPO.git ADW_LIVE_ISSUE=1 GH_TOKEN=… pytest tests/forge/test_live.py

(GITLAB_TOKEN or BITBUCKET_TOKEN for the other forges; `gh`/`glab` logins work too)."""

from __future__ import annotations

import os

import pytest

from adw.config import ForgeConfig
from adw.forge.auth import resolve
from adw.forge.client import connect_to
from adw.forge.remotes import forge_of

REMOTE = os.environ.get("ADW_LIVE_REMOTE", "")
ISSUE = os.environ.get("ADW_LIVE_ISSUE", "")


async def test_live_forge_reads_an_issue_and_looks_up_pull_requests() -> None:
    if not REMOTE or not ISSUE.isdigit():
        pytest.skip("live forge test: set ADW_LIVE_REMOTE (a remote URL) and ADW_LIVE_ISSUE (an issue number)")
    forge = forge_of(REMOTE, ForgeConfig())
    credentials, tried = await resolve(forge)
    if credentials is None:
        pytest.skip(f"live forge test: no login for {forge.host} (tried {', '.join(tried)})")
    provider = await connect_to(forge)
    try:
        issue = await provider.issue(int(ISSUE))
        assert issue.number == int(ISSUE) and issue.title and issue.url.startswith(forge.web_url)
        assert await provider.find_pull_request("adw/no-such-branch-for-the-live-test") is None
    finally:
        await provider.aclose()
