"""Nightly-style soak of the checkpoint model (at least 20,000 random steps with branch switches, detached HEADs,
type changes and editor saves during undo). Deselected by default; CI runs it in its own step:
`pytest -m soak tests/soak`. Raise ADW_SOAK_STEPS for a longer run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.git.test_checkpoint_property import run_model

SOAK_STEPS = int(os.environ.get("ADW_SOAK_STEPS", "20000"))
WALK = 16


@pytest.mark.soak
def test_checkpoints_follow_the_model_for_20000_steps(tmp_path: Path) -> None:
    # Walks end early at random (they average 15 of 16 steps), so ask for a quarter more steps than needed; the
    # run asserts the steps made.
    run_model(tmp_path, examples=SOAK_STEPS * 5 // 4 // WALK, steps=WALK, min_steps=SOAK_STEPS)
