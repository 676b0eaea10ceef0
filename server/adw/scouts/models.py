"""The report every caller receives: what `adw scout --json` prints and the plan phase reads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ScoutLocation(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Relative to the worktree root, with forward slashes.")
    line: int = Field(ge=1, description="1-based line to open first.")
    score: float
    scouts: list[str] = Field(description="The scouts whose evidence placed this file here, strongest first.")
    reason: str


class ScoutReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: str
    files: list[str] = Field(description="Source files to read (and probably change), best first.")
    tests: list[str]
    docs: list[str]
    config: list[str]
    locations: list[ScoutLocation] = Field(description="Source locations first, then tests, docs, configuration.")
    count: int = Field(description="Number of entries in `files`.")
    method: str
    timestamp: str = Field(description="When the ranking was computed (UTC, ISO 8601); a cached answer keeps it.")
