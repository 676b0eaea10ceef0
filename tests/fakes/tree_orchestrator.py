"""An ADW orchestrator for the crash test of agent process trees: runs two agents at once in REPO, each of
which starts a grandchild in a new session (out of its process group) and writes `LEADER GRANDCHILD` pids to
DIR/<task>.pids. `exits` then waits for the file DIR/go and exits; `lingers` runs on. Prints the workflow id,
then runs until killed."""

import asyncio
import sys
from pathlib import Path

from adw.sdlc.engine import open_engine
from fakes import command_task, python, workflow

AGENT = """
import os, pathlib, subprocess, sys, time
folder, task = pathlib.Path(sys.argv[1]), sys.argv[2]
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)", str(folder)],  # the folder names it for clean-up
    start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
(folder / f"{task}.tmp").write_text(f"{os.getpid()} {grandchild.pid}")
(folder / f"{task}.tmp").rename(folder / f"{task}.pids")
while task == "lingers" or not (folder / "go").exists():
    time.sleep(0.05)
"""

PATIENT = {"timeout": 3600.0, "inactivity_timeout": 3600.0}


async def main(repo: Path, folder: Path) -> None:
    engine = await open_engine(repo)
    tasks = [command_task(name, [*python(AGENT), str(folder), name], **PATIENT) for name in ("exits", "lingers")]
    wf = workflow(repo, tasks, name="tree")
    print(wf.id, flush=True)
    await engine.run(wf)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
