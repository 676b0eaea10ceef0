"""Built-in test and review agents: the project's tests (pytest, in the project's own environment, found by
adw.agents.environment) and ruff (run with the interpreter that runs ADW).

Each writes a machine-readable report (JUnit XML, ruff JSON) to a temporary folder outside the worktree, so
that nothing of it ends up in the workflow's commit, and turns every problem into a finding at file:line.
When the tool is not installed the phase succeeds with a warning that says nothing was checked, so that the
pipeline still runs on a bare machine and the gap is visible in the summary and the commit message.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from adw.agents.environment import TestEnvironment, discover_test_environment
from adw.agents.headless import CliAgent
from adw.agents.process import ProcessOutcome
from adw.errors import AdwError
from adw.workflow.agent import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Finding, Severity, Task

_NO_TESTS = 5  # pytest's exit status when it collected nothing


class PythonToolAgent(CliAgent):
    """Runs `python -m <module>` writing its report to `self.report`."""

    module: str
    report_name: str

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        argv = self.argv_base()
        if argv[:3] == [sys.executable, "-m", self.module] and importlib.util.find_spec(self.module) is None:
            message = f"{self.module} is not installed, so nothing was checked (pip install {self.module})"
            events.progress(message)
            warning = Finding(path=".", severity=Severity.WARNING, message=message, source=self.module)
            return AgentResult(status="succeeded", summary=f"skipped: {message}", findings=[warning])
        with tempfile.TemporaryDirectory(prefix=f"adw-{self.module}-") as folder:
            self.report = Path(folder) / self.report_name
            return await super().run(task, worktree, events, cancel)

    def argv_base(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    def process_env(self, task: Task, worktree: Path) -> dict[str, str]:
        return {"PYTHONDONTWRITEBYTECODE": "1", **self.env(task)}  # no __pycache__ in the commit


class PytestAgent(PythonToolAgent):
    """Runs the project's tests with the command `discover_test_environment` chooses, and says which and why.
    pytest runs report each failure as a finding from JUnit XML; other runners are judged by their exit code."""

    module = "pytest"
    report_name = "junit.xml"
    environment: TestEnvironment

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        try:
            self.environment = discover_test_environment(
                worktree, Path(self.workflow.repo), self.settings.test_command
            )
        except AdwError as exc:
            events.progress(exc.message)
            return AgentResult.failed(str(exc))
        events.progress(self.environment.describe())
        result = await super().run(task, worktree, events, cancel)
        chosen = f"{self.environment.kind}: {self.environment.reason}"
        return result.model_copy(
            update={
                "summary": f"{result.summary or result.status} ({chosen})",
                "outputs": {**result.outputs, "environment": self.environment.model_dump(mode="json", exclude={"env"})},
            }
        )

    def argv_base(self) -> list[str]:
        return self.environment.argv

    def argv(self, task: Task, worktree: Path) -> list[str]:
        if not self.environment.junit:
            return self.argv_base()
        # xunit1 is the JUnit flavour that records each test's file and line; no cache folder in the worktree.
        return [
            *self.argv_base(),
            f"--junitxml={self.report}",
            "-o",
            "junit_family=xunit1",
            "-p",
            "no:cacheprovider",
        ]

    def process_env(self, task: Task, worktree: Path) -> dict[str, str]:
        # The phase's own `env` has the last word, even over the discovered PATH or PYTHONPATH.
        return {**self.environment.env, **super().process_env(task, worktree)}

    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult:
        if not self.environment.junit:
            if outcome.returncode == 0:
                return AgentResult(status="succeeded", summary=f"{self.program} passed")
            return self.exit_failure(outcome)
        if outcome.returncode == _NO_TESTS:
            return AgentResult(status="succeeded", summary="no tests collected")
        if not self.report.is_file():
            return self.exit_failure(outcome)
        findings, counts = self._parse(self.report)
        for finding in findings:
            self.events.finding(finding)
        summary = ", ".join(f"{n} {word}" for word, n in counts.items() if n) or "no tests ran"
        if outcome.returncode == 0:
            return AgentResult(status="succeeded", summary=summary)
        if findings:
            return AgentResult.failed(f"tests failed: {summary}", summary=summary, findings=findings)
        return self.exit_failure(outcome)

    def _parse(self, report: Path) -> tuple[list[Finding], dict[str, int]]:
        root = ET.parse(report).getroot()
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        totals = {
            key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")
        }
        failed = totals["failures"] + totals["errors"]
        counts = {
            "passed": totals["tests"] - failed - totals["skipped"],
            "failed": failed,
            "skipped": totals["skipped"],
        }
        findings = []
        for case in root.iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if problem is None:
                continue
            path = case.get("file") or (case.get("classname") or "").replace(".", "/") + ".py"
            line = int(case.get("line", "-1")) + 1 or None  # JUnit's line is 0-based: the test's def
            text = problem.text or ""
            # Prefer where it failed inside the test file, from the traceback's `path:line: Error` lines.
            if hits := re.findall(rf"^{re.escape(path)}:(\d+):", text, re.MULTILINE):
                line = int(hits[-1])
            message = problem.get("message") or (text.strip().splitlines() or ["failed"])[-1]
            findings.append(
                Finding(
                    path=self.relative(path),
                    line=line,
                    severity=Severity.ERROR,
                    message=f"{case.get('name')}: {message}",
                    source="pytest",
                    key=f"{case.get('classname')}::{case.get('name')}",  # the same test failing, whatever it says
                )
            )
        return findings, counts


class RuffAgent(PythonToolAgent):
    module = "ruff"
    report_name = "ruff.json"

    def argv(self, task: Task, worktree: Path) -> list[str]:
        return [
            *self.argv_base(),
            "check",
            "--no-fix",  # a project's `fix = true` must not make the review rewrite files
            "--output-format",
            "json",
            f"--output-file={self.report}",
            "--no-cache",
            "--exit-zero",
            ".",
        ]

    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult:
        if outcome.returncode != 0 or not self.report.is_file():
            return self.exit_failure(outcome)
        findings = []
        for item in json.loads(self.report.read_text(encoding="utf-8") or "[]"):
            code = item.get("code")
            syntax = code in (None, "invalid-syntax")
            location = item.get("location") or {}
            findings.append(
                Finding(
                    path=self.relative(item.get("filename", "")),
                    line=location.get("row"),
                    column=location.get("column"),
                    severity=Severity.ERROR if syntax else Severity.WARNING,
                    message=item.get("message", ""),
                    source="ruff",
                    code=code,
                )
            )
        for finding in findings:
            self.events.finding(finding)
        errors = sum(f.severity is Severity.ERROR for f in findings)
        summary = f"{len(findings)} lint finding(s)" + (f", {errors} syntax error(s)" if errors else "")
        if errors:
            return AgentResult.failed(f"review found {summary}", summary=summary, findings=findings)
        return AgentResult(status="succeeded", summary=summary, findings=findings)
