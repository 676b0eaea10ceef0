"""`adw cluster status`: the Ray cluster that `executor = "ray"` runs agent phases on — its nodes, agent slots and
the phases running (one slot each), named from ADW's own record on the cluster."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from adw.cli.output import add_json_flag, emit
from adw.config import AdwConfig, load_config
from adw.errors import NotARepositoryError
from adw.git.repo import Repo
from adw.workflow.executor import ClusterStatus, cluster_status


def register(subparsers: Any) -> None:
    cluster = subparsers.add_parser("cluster", help="the Ray cluster agent phases run on with `--executor ray`")
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="its nodes, agent slots (free and taken) and the phases running",
        description="Connects to the Ray cluster (--address, else [tool.adw] address, else auto) and lists its "
        "nodes with their agent slots, then the ADW phases running on them (workflow, task, node, since when); "
        "a running phase takes one slot. Needs `pip install 'adw[ray]'`.",
    )
    status.add_argument(
        "--address", metavar="ADDR", help="auto, HOST:6379 or ray://HOST:10001 (default: [tool.adw] address)"
    )
    add_json_flag(status)
    status.set_defaults(handler=_status)


async def _status(args: argparse.Namespace) -> int:
    address = args.address or (await _config(Path(args.cwd))).address
    found = await cluster_status(address)
    emit(args, found.model_dump() | {"running_phases": found.running_phases}, _text(found))
    return 0


async def _config(cwd: Path) -> AdwConfig:
    """The repository's configuration; outside a repository, the defaults (a cluster needs no repository)."""
    try:
        repo = await Repo.discover(cwd)
    except NotARepositoryError:
        return AdwConfig()
    return load_config(repo.main_root, repo.config_cache)


def _text(found: ClusterStatus) -> str:
    lines = [
        f"Ray cluster at {found.address}: {len(found.nodes)} node(s), {found.agent_slots} agent slot(s), "
        f"{found.free_agent_slots} free, {found.running_phases} phase(s) running"
    ]
    for node in found.nodes:
        state = "alive" if node.alive else "dead"
        lines.append(f"  {node.node_id[:12]}  {node.address:<15}  {state:<5}  {node.agent_slots} agent slot(s), "
                     f"{node.cpus:g} CPU(s)")
    if found.phases:
        lines.append("phases running:")
    for phase in found.phases:
        since = time.strftime("%H:%M:%S", time.localtime(phase.since))
        lines.append(f"  {phase.workflow} [{phase.workflow_id}]  {phase.task_id} ({phase.agent})  on "
                     f"{phase.node_id[:12]} ({phase.host})  since {since}")
    return "\n".join(lines)
