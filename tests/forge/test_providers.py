"""The REST flows of each forge against a local server that answers with the documented response shapes:
issues, draft pull/merge requests created then updated, ADW's issue comment edited rather than repeated, CI
checks polled with ETags, and each error (401, 403, 404, 409/422, rate limits) turned into one clear message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from adw.config import ForgeConfig
from adw.forge import http
from adw.forge.client import NotLoggedInError, connect_to
from adw.forge.http import ForgeError
from adw.forge.providers import Provider
from adw.forge.remotes import Forge, forge_of
from tests.forge.fakeforge import API_PATHS, Fake, serve

REMOTES = {
    "github": ("https://github.com/octo/widget.git", "octo/widget", "GH_TOKEN"),
    "gitlab": ("git@gitlab.com:group/sub/app.git", "group/sub/app", "GITLAB_TOKEN"),
    "bitbucket": ("git@bitbucket.org:ws/repo-slug.git", "ws/repo-slug", "BITBUCKET_TOKEN"),
}
KINDS = list(REMOTES)


def fake_forge(kind: str, fake: Fake) -> Forge:
    url, _, _ = REMOTES[kind]
    host = forge_of(url, ForgeConfig()).host
    return forge_of(url, ForgeConfig(host=host, kind=kind, api_url=API_PATHS[kind](fake.base_url)))  # type: ignore[arg-type]


@pytest.fixture(params=KINDS)
def fake(request: pytest.FixtureRequest) -> Iterator[Fake]:
    kind = request.param
    with serve(kind, REMOTES[kind][1]) as server:
        yield server


@pytest.fixture
async def provider(fake: Fake) -> AsyncIterator[Provider]:
    client = await connect_to(fake_forge(fake.kind, fake), {"PATH": "", REMOTES[fake.kind][2]: "s3cret"})
    yield client
    await client.aclose()


async def test_reads_an_issue_with_its_labels_and_comments(fake: Fake, provider: Provider) -> None:
    label = "bug" if fake.kind != "gitlab" else "type::bug"
    fake.add_issue(
        12,
        "Crash on empty input",
        "It crashes.\n\n```python path=a.py\nx = 1\n```\n",
        [label],
        [("ana", "Also on None."), ("bo", "+1")],
    )
    issue = await provider.issue(12)
    assert (issue.number, issue.title, issue.labels) == (12, "Crash on empty input", [label])
    assert "path=a.py" in issue.body
    assert [(c.author, c.body) for c in issue.comments] == [("ana", "Also on None."), ("bo", "+1")]  # no system notes
    assert issue.url.endswith("/12")
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in fake.requests)


async def test_creates_a_draft_then_updates_the_same_one(fake: Fake, provider: Provider) -> None:
    assert await provider.find_pull_request("adw/12-crash") is None
    created = await provider.create_pull_request("adw/12-crash", "main", "Fix the crash", "body one")
    assert created.created and created.draft and created.state == "open" and created.head == "adw/12-crash"
    found = await provider.find_pull_request("adw/12-crash")
    assert found is not None and found.number == created.number
    updated = await provider.update_pull_request(found, "Fix the crash", "body two")
    assert (updated.number, updated.created, updated.draft) == (created.number, False, True)
    assert len(fake.pulls) == 1 and fake.pulls[0]["body"] == "body two"
    assert fake.pulls[0]["title"] == ("Draft: Fix the crash" if fake.kind == "gitlab" else "Fix the crash")


@pytest.mark.parametrize("kind", ["github", "gitlab"])  # Bitbucket answers a duplicate with the open one
async def test_a_second_create_is_refused_with_the_forges_words(kind: str) -> None:
    with serve(kind, REMOTES[kind][1]) as fake:
        provider = await connect_to(fake_forge(kind, fake), {"PATH": "", REMOTES[kind][2]: "s3cret"})
        try:
            await provider.create_pull_request("b", "main", "t", "x")
            with pytest.raises(ForgeError) as caught:
                await provider.create_pull_request("b", "main", "t", "x")
        finally:
            await provider.aclose()
    assert caught.value.status in (409, 422)
    assert "already exists" in caught.value.message


async def test_comments_are_added_and_edited(fake: Fake, provider: Provider) -> None:
    fake.add_issue(3, "t", "b", [], [])
    added = await provider.add_comment(3, "first")
    edited = await provider.edit_comment(3, added, "second")
    assert edited.id == added.id
    assert [c.body for c in await provider.comments(3)] == ["second"]


async def test_checks_are_summed_up_and_polled_with_etags(fake: Fake, provider: Provider) -> None:
    pr = await provider.create_pull_request("b", "main", "t", "x")
    words = {
        "github": ("success", "failure", "in_progress"),
        "gitlab": ("running",),
        "bitbucket": ("SUCCESSFUL", "FAILED", "INPROGRESS"),
    }[fake.kind]
    fake.statuses[pr.head_sha or ""] = list(words)
    checks = await provider.checks(pr)
    assert checks.state == "pending" if fake.kind == "gitlab" else checks.state == "failure"
    if fake.kind != "gitlab":
        assert (checks.passed, checks.failed, checks.pending) == (1, 1, 1)
    before = len(fake.requests)
    assert await provider.checks(pr) == checks  # unchanged: answered 304 from the cache
    conditional = fake.requests[before:]
    assert conditional and all("if-none-match" in r.headers for r in conditional)
    fake.statuses[pr.head_sha or ""] = ["success" if fake.kind != "bitbucket" else "SUCCESSFUL"]
    assert (await provider.checks(pr)).state == "success"


async def test_no_checks_is_none(fake: Fake, provider: Provider) -> None:
    pr = await provider.create_pull_request("b", "main", "t", "x")
    assert (await provider.checks(pr)).state == "none"


async def test_401_names_the_login_command(fake: Fake, provider: Provider) -> None:
    fake.fail("GET", r".*/issues/5", 401, {"message": "Bad credentials"})
    with pytest.raises(ForgeError) as caught:
        await provider.issue(5)
    error = caught.value
    assert error.status == 401 and REMOTES[fake.kind][2] in error.message
    login = {"github": "gh auth login", "gitlab": "glab auth login", "bitbucket": "BITBUCKET_APP_PASSWORD"}
    assert login[fake.kind] in error.hint


async def test_404_says_what_was_not_found(fake: Fake, provider: Provider) -> None:
    with pytest.raises(ForgeError) as caught:
        await provider.issue(404)
    assert caught.value.status == 404
    assert "issue #404" in caught.value.message and fake_forge(fake.kind, fake).project in caught.value.hint


async def test_rate_limits_say_when_to_retry(fake: Fake, provider: Provider) -> None:
    reset = int(time.time()) + 600
    if fake.kind == "github":
        fake.fail(
            "GET",
            r".*/issues/5",
            403,
            {"message": "API rate limit exceeded for user ID 1."},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        )
    elif fake.kind == "gitlab":
        fake.fail("GET", r".*/issues/5", 429, {"message": "Retry later"}, {"RateLimit-Reset": str(reset)})
    else:
        fake.fail(
            "GET", r".*/issues/5", 429, {"type": "error", "error": {"message": "Rate limit"}}, {"Retry-After": "60"}
        )
    with pytest.raises(ForgeError) as caught:
        await provider.issue(5)
    assert "rate-limiting" in caught.value.message
    expected = "retry after 60s" if fake.kind == "bitbucket" else time.strftime("%H:%M:%S", time.gmtime(reset))
    assert expected in caught.value.message and "nothing was changed" in caught.value.hint


async def test_writes_beyond_a_burst_go_one_per_spacing(
    fake: Fake, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "_WRITE_BURST", 2.0)
    monkeypatch.setattr(http, "_WRITE_SPACING", 0.4)
    fake.add_issue(12, "Crash", "It crashes.", [], [])
    await asyncio.gather(*(provider.add_comment(12, f"comment {n}") for n in range(5)))
    posts = sorted(r.at for r in fake.requests if r.method == "POST")
    assert len(posts) == 5 and len(fake.comments[12]) == 5
    assert posts[1] - posts[0] < 0.3  # the burst goes at once
    for later, earlier in zip(posts[2:], posts[1:4], strict=True):
        assert later - earlier > 0.35


@pytest.mark.parametrize("status", [403, 429])
async def test_a_write_refused_for_rate_limits_goes_again_after_the_wait_it_names(
    fake: Fake, provider: Provider, status: int
) -> None:
    fake.fail("POST", r".*", status, {"message": "API rate limit exceeded"}, {"Retry-After": "1"})
    pr = await provider.create_pull_request("b", "main", "t", "x")
    posts = [r.at for r in fake.requests if r.method == "POST"]
    assert len(posts) == 2 and posts[1] - posts[0] >= 0.95
    assert [p["number"] for p in fake.pulls] == [pr.number]


async def test_githubs_secondary_limit_without_a_wait_waits_its_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "_SECONDARY_WAIT", 0.5)
    with serve("github", REMOTES["github"][1]) as fake:
        client = await connect_to(fake_forge("github", fake), {"PATH": "", "GH_TOKEN": "s3cret"})
        fake.fail("POST", r".*", 403, {"message": "You have exceeded a secondary rate limit. Please wait."})
        await client.create_pull_request("b", "main", "t", "x")
        await client.aclose()
    posts = [r.at for r in fake.requests if r.method == "POST"]
    assert len(posts) == 2 and posts[1] - posts[0] >= 0.45 and len(fake.pulls) == 1


async def test_a_write_refused_for_long_fails_at_once_saying_when(fake: Fake, provider: Provider) -> None:
    fake.fail("POST", r".*", 429, {"message": "Retry later"}, {"Retry-After": "900"})
    started = time.monotonic()
    with pytest.raises(ForgeError) as caught:
        await provider.create_pull_request("b", "main", "t", "x")
    assert time.monotonic() - started < 5
    assert "retry after 900s" in caught.value.message and "nothing was changed" in caught.value.hint
    assert len(fake.calls("POST")) == 1 and fake.pulls == []


async def test_403_without_rate_limit_names_the_scopes(fake: Fake, provider: Provider) -> None:
    fake.fail("POST", r".*", 403, {"message": "Resource not accessible by integration"})
    with pytest.raises(ForgeError) as caught:
        await provider.create_pull_request("b", "main", "t", "x")
    assert "forbids" in caught.value.message and "scopes" in caught.value.hint


@pytest.mark.parametrize("answer", [{}, [], b"<html><body>Sign in</body></html>"])
async def test_an_answer_of_another_shape_says_what_to_check(fake: Fake, provider: Provider, answer: object) -> None:
    fake.fail("GET", r".*/issues/5", 200, answer)
    with pytest.raises(ForgeError) as caught:
        await provider.issue(5)
    assert "answered issue with something ADW does not understand" in caught.value.message
    assert "[tool.adw.forge] kind and api_url" in caught.value.hint


async def test_an_unreachable_forge_is_one_clear_error() -> None:
    forge = forge_of(
        "https://github.com/o/r.git", ForgeConfig(host="github.com", kind="github", api_url="http://127.0.0.1:9")
    )
    provider = await connect_to(forge, {"PATH": "", "GH_TOKEN": "t"})
    try:
        with pytest.raises(ForgeError) as caught:
            await provider.issue(1)
    finally:
        await provider.aclose()
    assert "cannot reach http://127.0.0.1:9" in caught.value.message


@pytest.mark.parametrize("kind", KINDS)
async def test_without_a_login_the_error_names_the_command(kind: str) -> None:
    forge = forge_of(REMOTES[kind][0], ForgeConfig())
    with pytest.raises(NotLoggedInError) as caught:
        await connect_to(forge, {"PATH": ""})
    assert f"not logged in to {forge.host}" in caught.value.message
    expected = {
        "github": "`gh auth login --hostname github.com`",
        "gitlab": "`glab auth login --hostname gitlab.com`",
        "bitbucket": "BITBUCKET_USERNAME and BITBUCKET_APP_PASSWORD",
    }[kind]
    assert expected in caught.value.hint
