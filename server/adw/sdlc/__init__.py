"""The parallel SDLC on top of the workflow engine: a workflow per spec (`pipeline`), the steps that are not
agent CLIs (`steps`), the engine the adapters open with every kind of agent (`engine`) and `adw demo`'s
repository (`demo`)."""
