# First on PYTHONPATH, this makes `import ray` fail as it does where Ray is not installed.
raise ModuleNotFoundError("No module named 'ray'", name="ray")
