"""Forges: GitHub (and Enterprise), GitLab (and self-hosted), Bitbucket Cloud. Detects the repository's forge
from its remote, authenticates as the user already does, and speaks each one's REST API (docs/FORGES.md)."""
