"""An ADW orchestrator for the crash test: runs first → second → third in REPO, where `second` hangs until the
file GO exists. Each task appends its name to RUNS. Prints the workflow id, then runs until killed or done."""

import asyncio
import sys
from pathlib import Path

from adw.sdlc.engine import open_engine
from fakes import command_task, python, workflow


def step(name: str, runs: Path, go: Path | None = None) -> list[str]:
    wait = f"\nwhile not pathlib.Path({str(go)!r}).exists(): time.sleep(0.05)" if go else ""
    record = f"with open({str(runs)!r}, 'a') as f: f.write('{name}\\n')"
    code = f"import pathlib, time  # adw-crash-test\n{record}{wait}"
    return python(code)


async def main(repo: Path, runs: Path, go: Path) -> None:
    engine = await open_engine(repo)
    tasks = [
        command_task("first", step("first", runs)),
        command_task("second", step("second", runs, go), ["first"]),
        command_task("third", step("third", runs), ["second"]),
    ]
    wf = workflow(repo, tasks, name="crash")
    print(wf.id, flush=True)
    await engine.run(wf)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
