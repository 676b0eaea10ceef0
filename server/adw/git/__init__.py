"""The git core: one async runner, repository discovery, worktrees and checkpoints. Never imports the LSP layer."""
