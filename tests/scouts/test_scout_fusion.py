"""Fusion: one vote per scout and file, agreement bonus, lines from evidence that has one, stable order."""

from __future__ import annotations

from adw.scouts.evidence import Evidence
from adw.scouts.fusion import AGREEMENT_BONUS, fuse


def test_each_scout_votes_once_per_file_with_its_best_evidence() -> None:
    ranked = fuse(
        {
            "implementation": [Evidence(1, 2.0, 10, "def a"), Evidence(1, 3.0, 20, "def b")],
            "tests": [],
        }
    )
    assert [(r.index, r.score, r.best.line) for r in ranked] == [(1, 3.0, 20)]


def test_agreeing_scouts_lift_a_file_above_a_slightly_stronger_single_match() -> None:
    ranked = fuse(
        {
            "implementation": [Evidence(1, 2.0, 5, "direct"), Evidence(2, 2.1, 7, "direct")],
            "dependencies": [Evidence(1, 0.2, None, "imported by 2")],
        }
    )
    assert [r.index for r in ranked] == [1, 2]
    assert ranked[0].score == (2.0 + 0.2) * (1 + AGREEMENT_BONUS)
    assert ranked[0].scouts == ("implementation", "dependencies")  # strongest contribution first


def test_neighbour_evidence_alone_stays_below_direct_matches_and_ties_keep_file_order() -> None:
    ranked = fuse(
        {
            "implementation": [Evidence(4, 1.0, 3, "direct"), Evidence(3, 1.0, 9, "direct")],
            "architecture": [Evidence(0, 0.2, None, "entry point of 3")],
        }
    )
    assert [r.index for r in ranked] == [3, 4, 0]


def test_the_line_comes_from_the_strongest_evidence_that_has_one() -> None:
    ranked = fuse(
        {
            "implementation": [Evidence(1, 1.0, None, "mentions it")],
            "documentation": [Evidence(1, 0.4, 12, "`name` is named in docs")],
        }
    )
    assert ranked[0].best.line == 12 and ranked[0].best.reason == "`name` is named in docs"


def test_files_without_positive_evidence_are_dropped() -> None:
    assert fuse({"implementation": [Evidence(1, 0.0, 1, "nothing")]}) == []
