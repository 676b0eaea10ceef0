"""Scouts: find the files and lines a task is about, in well under a second, without an LLM or a network.

Never imports the LSP or CLI layers; both call `scout()`.
"""

from adw.scouts.engine import OUTPUT_FILE, SCOUT_VERSION, save_report, scout
from adw.scouts.models import ScoutLocation, ScoutReport

__all__ = ["OUTPUT_FILE", "SCOUT_VERSION", "ScoutLocation", "ScoutReport", "save_report", "scout"]
