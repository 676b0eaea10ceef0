"""ADW — AI Developer Workflows.

Kept import-free on purpose: `adw --version` must not pay for the heavy modules.
"""

__version__ = "0.1.0"
