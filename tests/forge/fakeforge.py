"""A local HTTP server (stdlib `http.server` in a thread) that answers like GitHub, GitLab or Bitbucket Cloud:
the documented response shapes of the calls ADW makes, kept in memory so that create-then-update and comment
editing behave as on the real forge. It records every request; `fail` makes the next matching call answer an
error the way the forge documents it (401, 404, 422, rate limits)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fake:
    kind: str
    project: str
    requests: list[Request] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, list[str]] = field(default_factory=dict)  # sha → states in the forge's words
    failures: list[tuple[str, str, Answer]] = field(default_factory=list)
    base_url: str = ""
    next_id: int = 100

    def fail(self, method: str, path_pattern: str, status: int, body: Any, headers: dict[str, str] | None = None):
        self.failures.append((method, path_pattern, (status, body, headers or {})))

    def calls(self, method: str | None = None) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests if method is None or r.method == method]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_issue(self, number: int, title: str, body: str, labels: list[str], comments: list[tuple[str, str]]):
        self.issues[number] = {"title": title, "body": body, "labels": labels}
        self.comments[number] = [{"id": self.new_id(), "author": a, "body": b} for a, b in comments]

    # -- routing -------------------------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        self.requests.append(request)
        for index, (method, pattern, answer) in enumerate(self.failures):
            if method == request.method and re.fullmatch(pattern, request.path):
                del self.failures[index]
                return answer
        handler = {"github": self._github, "gitlab": self._gitlab, "bitbucket": self._bitbucket}[self.kind]
        return handler(request)

    def _etagged(self, request: Request, data: Any) -> Answer:
        etag = f'"{abs(hash(json.dumps(data, sort_keys=True)))}"'
        if request.headers.get("if-none-match") == etag:
            return 304, None, {"ETag": etag}
        return 200, data, {"ETag": etag}

    def _github(self, r: Request) -> Answer:
        owner, name = self.project.split("/")
        web = f"{self.base_url}/{self.project}"
        prefix = f"/repos/{owner}/{name}"
        path = r.path.removeprefix(prefix)
        if m := re.fullmatch(r"/issues/(\d+)", path):
            issue = self.issues.get(int(m[1]))
            if issue is None:
                return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
            labels = [{"id": i, "name": label} for i, label in enumerate(issue["labels"])]
            return (
                200,
                {
                    "number": int(m[1]),
                    "title": issue["title"],
                    "body": issue["body"],
                    "labels": labels,
                    "html_url": f"{web}/issues/{m[1]}",
                    "state": "open",
                },
                {},
            )
        if m := re.fullmatch(r"/issues/(\d+)/comments", path):
            found = self.comments.setdefault(int(m[1]), [])
            if r.method == "POST":
                comment = {"id": self.new_id(), "author": "adw-user", "body": r.body["body"]}
                found.append(comment)
                return 201, {"id": comment["id"], "user": {"login": "adw-user"}, "body": comment["body"]}, {}
            return 200, [{"id": c["id"], "user": {"login": c["author"]}, "body": c["body"]} for c in found], {}
        if m := re.fullmatch(r"/issues/comments/(\d+)", path):
            comment = next(c for cs in self.comments.values() for c in cs if c["id"] == int(m[1]))
            comment["body"] = r.body["body"]
            return 200, {"id": comment["id"], "user": {"login": comment["author"]}, "body": comment["body"]}, {}
        if path == "/pulls" and r.method == "POST":
            if any(p["head"] == r.body["head"] and p["state"] == "open" for p in self.pulls):
                return (
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for {owner}:{r.body['head']}.",
                            }
                        ],
                    },
                    {},
                )
            pr = {
                "number": len(self.pulls) + 1,
                "title": r.body["title"],
                "body": r.body["body"],
                "state": "open",
                "draft": r.body.get("draft", False),
                "head": r.body["head"],
                "base": r.body["base"],
                "sha": "0" * 40,
            }
            self.pulls.append(pr)
            return 201, self._github_pr(pr, web), {}
        if path == "/pulls":
            head = r.query.get("head", "").partition(":")[2]
            found = [p for p in self.pulls if p["head"] == head and p["state"] == r.query.get("state", "open")]
            return self._etagged(r, [self._github_pr(p, web) for p in found])
        if m := re.fullmatch(r"/pulls/(\d+)", path):
            pr = self.pulls[int(m[1]) - 1]
            pr.update({k: v for k, v in r.body.items() if k in ("title", "body")})
            return 200, self._github_pr(pr, web), {}
        if m := re.fullmatch(r"/commits/(\w+)/check-runs", path):
            runs = [
                {"status": "completed" if s != "in_progress" else s, "conclusion": s if s != "in_progress" else None}
                for s in self.statuses.get(m[1], [])
            ]
            return self._etagged(r, {"total_count": len(runs), "check_runs": runs})
        if m := re.fullmatch(r"/commits/(\w+)/status", path):
            return self._etagged(r, {"state": "success", "statuses": []})
        return 404, {"message": "Not Found"}, {}

    def _github_pr(self, pr: dict[str, Any], web: str) -> dict[str, Any]:
        return {
            "number": pr["number"],
            "html_url": f"{web}/pull/{pr['number']}",
            "title": pr["title"],
            "body": pr["body"],
            "state": pr["state"],
            "draft": pr["draft"],
            "merged_at": None,
            "head": {"ref": pr["head"], "sha": pr["sha"]},
            "base": {"ref": pr["base"]},
        }

    def _gitlab(self, r: Request) -> Answer:
        prefix = "/api/v4/projects/" + self.project.replace("/", "%2F")
        if not r.path.startswith(prefix):
            return 404, {"message": "404 Project Not Found"}, {}
        path = r.path.removeprefix(prefix)
        web = f"{self.base_url}/{self.project}"
        if m := re.fullmatch(r"/issues/(\d+)", path):
            issue = self.issues.get(int(m[1]))
            if issue is None:
                return 404, {"message": "404 Not found"}, {}
            return (
                200,
                {
                    "iid": int(m[1]),
                    "title": issue["title"],
                    "description": issue["body"],
                    "labels": issue["labels"],
                    "web_url": f"{web}/-/issues/{m[1]}",
                },
                {},
            )
        if m := re.fullmatch(r"/issues/(\d+)/notes", path):
            found = self.comments.setdefault(int(m[1]), [])
            if r.method == "POST":
                note = {"id": self.new_id(), "author": "adw-user", "body": r.body["body"]}
                found.append(note)
                return (
                    201,
                    {"id": note["id"], "author": {"username": "adw-user"}, "body": note["body"], "system": False},
                    {},
                )
            system = [{"id": 1, "author": {"username": "bot"}, "body": "changed the description", "system": True}]
            return (
                200,
                system
                + [
                    {"id": c["id"], "author": {"username": c["author"]}, "body": c["body"], "system": False}
                    for c in found
                ],
                {},
            )
        if m := re.fullmatch(r"/issues/(\d+)/notes/(\d+)", path):
            note = next(c for c in self.comments[int(m[1])] if c["id"] == int(m[2]))
            note["body"] = r.body["body"]
            return 200, {"id": note["id"], "author": {"username": note["author"]}, "body": note["body"]}, {}
        if path == "/merge_requests" and r.method == "POST":
            if any(p["head"] == r.body["source_branch"] and p["state"] == "opened" for p in self.pulls):
                return 409, {"message": ["Another open merge request already exists for this source branch: !1"]}, {}
            mr = {
                "number": len(self.pulls) + 1,
                "title": r.body["title"],
                "body": r.body["description"],
                "state": "opened",
                "head": r.body["source_branch"],
                "base": r.body["target_branch"],
                "sha": "1" * 40,
            }
            self.pulls.append(mr)
            return 201, self._gitlab_mr(mr, web), {}
        if path == "/merge_requests":
            found = [p for p in self.pulls if p["head"] == r.query.get("source_branch") and p["state"] == "opened"]
            return self._etagged(r, [self._gitlab_mr(p, web) for p in found])
        if m := re.fullmatch(r"/merge_requests/(\d+)", path):
            mr = self.pulls[int(m[1]) - 1]
            if r.method == "PUT":
                mr.update({"title": r.body["title"], "body": r.body["description"]})
            data = self._gitlab_mr(mr, web)
            states = self.statuses.get(mr["sha"], [])
            data["head_pipeline"] = (
                {"id": 9, "status": states[0], "web_url": f"{web}/-/pipelines/9"} if states else None
            )
            return self._etagged(r, data) if r.method == "GET" else (200, data, {})
        return 404, {"message": "404 Not Found"}, {}

    def _gitlab_mr(self, mr: dict[str, Any], web: str) -> dict[str, Any]:
        return {
            "iid": mr["number"],
            "web_url": f"{web}/-/merge_requests/{mr['number']}",
            "title": mr["title"],
            "description": mr["body"],
            "state": mr["state"],
            "draft": mr["title"].startswith("Draft:"),
            "source_branch": mr["head"],
            "target_branch": mr["base"],
            "sha": mr["sha"],
        }

    def _bitbucket(self, r: Request) -> Answer:
        prefix = f"/2.0/repositories/{self.project}"
        path = r.path.removeprefix(prefix)
        web = f"{self.base_url}/{self.project}"
        if m := re.fullmatch(r"/issues/(\d+)", path):
            issue = self.issues.get(int(m[1]))
            if issue is None:
                return 404, {"type": "error", "error": {"message": "Issue not found"}}, {}
            return (
                200,
                {
                    "id": int(m[1]),
                    "title": issue["title"],
                    "content": {"raw": issue["body"]},
                    "kind": issue["labels"][0] if issue["labels"] else "task",
                    "component": None,
                    "links": {"html": {"href": f"{web}/issues/{m[1]}"}},
                },
                {},
            )
        if m := re.fullmatch(r"/issues/(\d+)/comments", path):
            found = self.comments.setdefault(int(m[1]), [])
            if r.method == "POST":
                comment = {"id": self.new_id(), "author": "ADW User", "body": r.body["content"]["raw"]}
                found.append(comment)
                return 201, {"id": comment["id"], "content": {"raw": comment["body"]}}, {}
            return (
                200,
                {
                    "values": [
                        {"id": c["id"], "user": {"display_name": c["author"]}, "content": {"raw": c["body"]}}
                        for c in found
                    ],
                    "pagelen": 100,
                },
                {},
            )
        if m := re.fullmatch(r"/issues/(\d+)/comments/(\d+)", path):
            comment = next(c for c in self.comments[int(m[1])] if c["id"] == int(m[2]))
            comment["body"] = r.body["content"]["raw"]
            return 200, {"id": comment["id"], "content": {"raw": comment["body"]}}, {}
        if path == "/pullrequests" and r.method == "POST":
            pr = {
                "number": len(self.pulls) + 1,
                "title": r.body["title"],
                "body": r.body["description"],
                "state": "OPEN",
                "draft": r.body.get("draft", False),
                "head": r.body["source"]["branch"]["name"],
                "base": r.body["destination"]["branch"]["name"],
                "sha": "2" * 12,
            }
            self.pulls.append(pr)
            return 201, self._bitbucket_pr(pr, web), {}
        if path == "/pullrequests":
            wanted = re.search(r'source.branch.name="([^"]+)"', r.query.get("q", ""))
            found = [p for p in self.pulls if wanted and p["head"] == wanted[1] and p["state"] == "OPEN"]
            return self._etagged(r, {"values": [self._bitbucket_pr(p, web) for p in found], "pagelen": 10})
        if m := re.fullmatch(r"/pullrequests/(\d+)", path):
            pr = self.pulls[int(m[1]) - 1]
            pr.update({"title": r.body["title"], "body": r.body["description"]})
            return 200, self._bitbucket_pr(pr, web), {}
        if m := re.fullmatch(r"/commit/(\w+)/statuses", path):
            return self._etagged(
                r, {"values": [{"state": s, "key": f"ci-{i}"} for i, s in enumerate(self.statuses.get(m[1], []))]}
            )
        return 404, {"type": "error", "error": {"message": "Resource not found"}}, {}

    def _bitbucket_pr(self, pr: dict[str, Any], web: str) -> dict[str, Any]:
        return {
            "id": pr["number"],
            "title": pr["title"],
            "description": pr["body"],
            "state": pr["state"],
            "draft": pr["draft"],
            "links": {"html": {"href": f"{web}/pull-requests/{pr['number']}"}},
            "source": {"branch": {"name": pr["head"]}, "commit": {"hash": pr["sha"]}},
            "destination": {"branch": {"name": pr["base"]}},
        }


def _handler(fake: Fake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=unquote(parts.path) if fake.kind != "gitlab" else parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            status, body, headers = fake.answer(request)
            data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if data:
                self.send_header("Content-Type", "text/html" if isinstance(body, bytes) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(kind: str, project: str) -> Iterator[Fake]:
    fake = Fake(kind=kind, project=project)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


API_PATHS: dict[str, Callable[[str], str]] = {
    "github": lambda base: base,
    "gitlab": lambda base: f"{base}/api/v4",
    "bitbucket": lambda base: f"{base}/2.0",
}


def project_pyproject(fake: Fake) -> str:
    """pyproject.toml of a small Python project whose forge is `fake` (GitHub)."""
    return f"""[tool.pytest.ini_options]
pythonpath = ["src"]

[tool.adw.agents]
stop_grace = 0.3
test_command = ["python", "-m", "pytest", "-q"]

[tool.adw.forge]
host = "github.com"
kind = "github"
api_url = "{fake.base_url}"
"""


def main(argv: list[str]) -> None:
    """`python -m tests.forge.fakeforge KIND PROJECT [ISSUES.json]` (the browser e2e): serves with the issues of the
    JSON list (`{"number", "title", "body", "labels"}`), prints its URL, and stops when its standard input closes."""
    kind, project, *issues = argv
    with serve(kind, project) as fake:
        for issue in json.loads(Path(issues[0]).read_text(encoding="utf-8")) if issues else []:
            fake.add_issue(issue["number"], issue["title"], issue["body"], issue.get("labels", []), [])
        print(fake.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
