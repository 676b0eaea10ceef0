"""The documented REST calls of GitHub (v3), GitLab (v4) and Bitbucket Cloud (2.0), behind one interface:
read an issue, find/create/update a draft pull (merge) request, add or update ADW's comment, read CI checks."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from adw.forge.http import ForgeError, ForgeHttp
from adw.forge.remotes import Forge

CheckState = Literal["none", "pending", "success", "failure"]
T = TypeVar("T")


class Comment(BaseModel):
    id: str
    author: str
    body: str


class Issue(BaseModel):
    number: int
    title: str
    body: str
    labels: list[str] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)
    url: str


class PullRequest(BaseModel):
    number: int
    url: str
    title: str
    state: str  # open, closed, merged (each forge's word, lower case)
    draft: bool
    head: str
    head_sha: str | None = None
    created: bool = False  # by this call


class Checks(BaseModel):
    """The CI state of a commit: every check run and commit status, summed up."""

    state: CheckState
    passed: int = 0
    failed: int = 0
    pending: int = 0
    url: str | None = None


def sum_checks(states: list[CheckState], url: str | None = None) -> Checks:
    counts = {state: states.count(state) for state in ("success", "failure", "pending")}
    overall: CheckState = (
        "none" if not states else "failure" if counts["failure"] else "pending" if counts["pending"] else "success"
    )
    return Checks(state=overall, passed=counts["success"], failed=counts["failure"], pending=counts["pending"], url=url)


def _understood(call: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """An answer of another shape than the documented one (a wrong `api_url`, an HTML login page, another
    product's API) is a ForgeError saying what to check, not a KeyError."""

    @functools.wraps(call)
    async def checked(self: Provider, *args: Any, **kwargs: Any) -> T:
        try:
            return await call(self, *args, **kwargs)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            forge = self.forge
            raise ForgeError(
                f"{forge.host} answered {call.__name__} with something ADW does not understand "
                f"({type(exc).__name__}: {str(exc)[:200]})",
                f"check that {forge.api_url} is the {forge.kind} REST API ([tool.adw.forge] kind and api_url)",
            ) from None

    return checked


class Provider(ABC):
    """One forge's REST calls. Idempotence is the caller's (`adw.forge.pr`): find before create. Every public
    coroutine of a subclass answers a misunderstood reply with a ForgeError (`_understood`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(member) and name != "aclose":
                setattr(cls, name, _understood(member))

    def __init__(self, http: ForgeHttp) -> None:
        self.http = http
        self.forge: Forge = http.forge

    async def aclose(self) -> None:
        await self.http.aclose()

    @abstractmethod
    async def issue(self, number: int) -> Issue: ...

    @abstractmethod
    async def find_pull_request(self, branch: str) -> PullRequest | None:
        """The open pull request from `branch` of this project, if any."""

    @abstractmethod
    async def create_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        """A new draft."""

    @abstractmethod
    async def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest: ...

    @abstractmethod
    async def comments(self, issue: int) -> list[Comment]: ...

    @abstractmethod
    async def add_comment(self, issue: int, body: str) -> Comment: ...

    @abstractmethod
    async def edit_comment(self, issue: int, comment: Comment, body: str) -> Comment: ...

    @abstractmethod
    async def checks(self, pr: PullRequest) -> Checks: ...

    def closes(self, issue: int) -> str:
        """The words in a pull request's body that link (and on merge close) the issue."""
        return f"Closes #{issue}"


class GitHub(Provider):
    def _repo(self, *rest: str | int) -> str:
        return "/".join(["repos", self.forge.owner, self.forge.name, *(str(part) for part in rest)])

    async def issue(self, number: int) -> Issue:
        data = await self.http.call("GET", self._repo("issues", number), what=f"issue #{number}")
        return Issue(
            number=number,
            title=data["title"],
            body=data.get("body") or "",
            labels=[label["name"] if isinstance(label, dict) else str(label) for label in data.get("labels", [])],
            comments=await self.comments(number),
            url=data["html_url"],
        )

    def _pr(self, data: dict[str, Any], created: bool = False) -> PullRequest:
        return PullRequest(
            number=data["number"],
            url=data["html_url"],
            title=data["title"],
            state="merged" if data.get("merged_at") else data["state"],
            draft=bool(data.get("draft")),
            head=data["head"]["ref"],
            head_sha=data["head"].get("sha"),
            created=created,
        )

    async def find_pull_request(self, branch: str) -> PullRequest | None:
        params = {"head": f"{self.forge.owner}:{branch}", "state": "open", "per_page": "10"}
        found = await self.http.call("GET", self._repo("pulls"), params=params, what="pull requests", cached=True)
        return self._pr(found[0]) if found else None

    async def create_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        payload = {"title": title, "head": branch, "base": base, "body": body, "draft": True}
        return self._pr(await self.http.call("POST", self._repo("pulls"), json=payload, what="the pull request"), True)

    async def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        path = self._repo("pulls", pr.number)
        return self._pr(await self.http.call("PATCH", path, json={"title": title, "body": body}, what=f"#{pr.number}"))

    async def comments(self, issue: int) -> list[Comment]:
        path = self._repo("issues", issue, "comments")
        found = await self.http.call("GET", path, params={"per_page": "100"}, what=f"issue #{issue}")
        return [Comment(id=str(c["id"]), author=(c.get("user") or {}).get("login", ""), body=c["body"]) for c in found]

    async def add_comment(self, issue: int, body: str) -> Comment:
        data = await self.http.call(
            "POST", self._repo("issues", issue, "comments"), json={"body": body}, what=f"issue #{issue}"
        )
        return Comment(id=str(data["id"]), author=(data.get("user") or {}).get("login", ""), body=data["body"])

    async def edit_comment(self, issue: int, comment: Comment, body: str) -> Comment:
        path = self._repo("issues", "comments", comment.id)
        data = await self.http.call("PATCH", path, json={"body": body}, what=f"comment {comment.id}")
        return Comment(id=str(data["id"]), author=comment.author, body=data["body"])

    async def checks(self, pr: PullRequest) -> Checks:
        """Check runs (GitHub Actions and apps) and commit statuses (older CI) of the head commit."""
        if not pr.head_sha:
            return sum_checks([])
        runs = await self.http.call(
            "GET",
            self._repo("commits", pr.head_sha, "check-runs"),
            params={"per_page": "100"},
            what="check runs",
            cached=True,
        )
        status = await self.http.call(
            "GET", self._repo("commits", pr.head_sha, "status"), what="commit status", cached=True
        )
        states: list[CheckState] = [_github_run(run) for run in runs.get("check_runs", [])]
        states += [_github_status(item.get("state", "")) for item in status.get("statuses", [])]
        return sum_checks(states, f"{pr.url}/checks")


def _github_run(run: dict[str, Any]) -> CheckState:
    if run.get("status") != "completed":
        return "pending"
    return "success" if run.get("conclusion") in ("success", "neutral", "skipped") else "failure"


def _github_status(state: str) -> CheckState:
    return "success" if state == "success" else "pending" if state == "pending" else "failure"  # error, failure


class GitLab(Provider):
    def _project(self, *rest: str | int) -> str:
        return "/".join(["projects", self.forge.project_id, *(str(part) for part in rest)])

    async def issue(self, number: int) -> Issue:
        data = await self.http.call("GET", self._project("issues", number), what=f"issue #{number}")
        return Issue(
            number=number,
            title=data["title"],
            body=data.get("description") or "",
            labels=[str(label) for label in data.get("labels", [])],
            comments=await self.comments(number),
            url=data["web_url"],
        )

    def _mr(self, data: dict[str, Any], created: bool = False) -> PullRequest:
        return PullRequest(
            number=data["iid"],
            url=data["web_url"],
            title=data["title"],
            state={"opened": "open"}.get(data["state"], data["state"]),
            draft=bool(data.get("draft", data.get("work_in_progress"))),
            head=data["source_branch"],
            head_sha=data.get("sha"),
            created=created,
        )

    async def find_pull_request(self, branch: str) -> PullRequest | None:
        params = {"source_branch": branch, "state": "opened"}
        found = await self.http.call(
            "GET", self._project("merge_requests"), params=params, what="merge requests", cached=True
        )
        return self._mr(found[0]) if found else None

    async def create_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        # A title starting with "Draft:" is how the API makes a draft merge request.
        payload = {
            "source_branch": branch,
            "target_branch": base,
            "title": f"Draft: {title}",
            "description": body,
            "remove_source_branch": False,
        }
        data = await self.http.call("POST", self._project("merge_requests"), json=payload, what="the merge request")
        return self._mr(data, True)

    async def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        shown = f"Draft: {title}" if pr.draft else title  # updating keeps a draft a draft
        data = await self.http.call(
            "PUT",
            self._project("merge_requests", pr.number),
            json={"title": shown, "description": body},
            what=f"!{pr.number}",
        )
        return self._mr(data)

    async def comments(self, issue: int) -> list[Comment]:
        found = await self.http.call(
            "GET",
            self._project("issues", issue, "notes"),
            params={"sort": "asc", "per_page": "100"},
            what=f"issue #{issue}",
        )
        return [
            Comment(id=str(n["id"]), author=(n.get("author") or {}).get("username", ""), body=n["body"])
            for n in found
            if not n.get("system")  # "changed the description", "mentioned in …": not what people wrote
        ]

    async def add_comment(self, issue: int, body: str) -> Comment:
        data = await self.http.call(
            "POST", self._project("issues", issue, "notes"), json={"body": body}, what=f"issue #{issue}"
        )
        return Comment(id=str(data["id"]), author=(data.get("author") or {}).get("username", ""), body=data["body"])

    async def edit_comment(self, issue: int, comment: Comment, body: str) -> Comment:
        data = await self.http.call(
            "PUT", self._project("issues", issue, "notes", comment.id), json={"body": body}, what=f"note {comment.id}"
        )
        return Comment(id=str(data["id"]), author=comment.author, body=data["body"])

    async def checks(self, pr: PullRequest) -> Checks:
        """The merge request's head pipeline."""
        data = await self.http.call(
            "GET", self._project("merge_requests", pr.number), what=f"!{pr.number}", cached=True
        )
        pipeline = data.get("head_pipeline") or {}
        if not pipeline:
            return sum_checks([])
        return sum_checks([_gitlab_status(pipeline.get("status", ""))], pipeline.get("web_url"))


def _gitlab_status(status: str) -> CheckState:
    if status in ("success", "skipped", "manual"):
        return "success"
    if status in ("failed", "canceled"):
        return "failure"
    return "pending"  # created, waiting_for_resource, preparing, pending, running, scheduled


class Bitbucket(Provider):
    def _repo(self, *rest: str | int) -> str:
        return "/".join(["repositories", self.forge.owner, self.forge.name, *(str(part) for part in rest)])

    async def issue(self, number: int) -> Issue:
        data = await self.http.call("GET", self._repo("issues", number), what=f"issue #{number}")
        # Bitbucket has no labels: an issue's kind (bug, enhancement, proposal, task) and component stand in.
        labels = [str(data["kind"])] if data.get("kind") else []
        labels += [str(data["component"]["name"])] if data.get("component") else []
        return Issue(
            number=number,
            title=data["title"],
            body=(data.get("content") or {}).get("raw") or "",
            labels=labels,
            comments=await self.comments(number),
            url=data["links"]["html"]["href"],
        )

    def _pr(self, data: dict[str, Any], created: bool = False) -> PullRequest:
        return PullRequest(
            number=data["id"],
            url=data["links"]["html"]["href"],
            title=data["title"],
            state=str(data["state"]).lower(),
            draft=bool(data.get("draft")),
            head=data["source"]["branch"]["name"],
            head_sha=((data["source"].get("commit") or {}).get("hash")),
            created=created,
        )

    async def find_pull_request(self, branch: str) -> PullRequest | None:
        query = f'source.branch.name="{branch}" AND state="OPEN"'
        found = await self.http.call(
            "GET", self._repo("pullrequests"), params={"q": query}, what="pull requests", cached=True
        )
        values = found.get("values", [])
        return self._pr(values[0]) if values else None

    async def create_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        payload = {
            "title": title,
            "description": body,
            "draft": True,
            "source": {"branch": {"name": branch}},
            "destination": {"branch": {"name": base}},
        }
        return self._pr(
            await self.http.call("POST", self._repo("pullrequests"), json=payload, what="the pull request"), True
        )

    async def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        data = await self.http.call(
            "PUT",
            self._repo("pullrequests", pr.number),
            json={"title": title, "description": body},
            what=f"#{pr.number}",
        )
        return self._pr(data)

    async def comments(self, issue: int) -> list[Comment]:
        found = await self.http.call(
            "GET", self._repo("issues", issue, "comments"), params={"pagelen": "100"}, what=f"issue #{issue}"
        )
        return [
            Comment(
                id=str(c["id"]),
                author=(c.get("user") or {}).get("display_name", ""),
                body=(c.get("content") or {}).get("raw") or "",
            )
            for c in found.get("values", [])
        ]

    async def add_comment(self, issue: int, body: str) -> Comment:
        data = await self.http.call(
            "POST", self._repo("issues", issue, "comments"), json={"content": {"raw": body}}, what=f"issue #{issue}"
        )
        return Comment(id=str(data["id"]), author="", body=(data.get("content") or {}).get("raw") or body)

    async def edit_comment(self, issue: int, comment: Comment, body: str) -> Comment:
        data = await self.http.call(
            "PUT",
            self._repo("issues", issue, "comments", comment.id),
            json={"content": {"raw": body}},
            what=f"comment {comment.id}",
        )
        return Comment(id=str(data["id"]), author=comment.author, body=(data.get("content") or {}).get("raw") or body)

    async def checks(self, pr: PullRequest) -> Checks:
        if not pr.head_sha:
            return sum_checks([])
        found = await self.http.call(
            "GET", self._repo("commit", pr.head_sha, "statuses"), what="commit statuses", cached=True
        )
        states = [_bitbucket_status(item.get("state", "")) for item in found.get("values", [])]
        return sum_checks(states, pr.url)

    def closes(self, issue: int) -> str:
        return f"Fixes #{issue}"


def _bitbucket_status(state: str) -> CheckState:
    return "success" if state == "SUCCESSFUL" else "pending" if state == "INPROGRESS" else "failure"  # FAILED, STOPPED


PROVIDERS: dict[str, type[Provider]] = {"github": GitHub, "gitlab": GitLab, "bitbucket": Bitbucket}
