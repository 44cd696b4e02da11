"""`dataops-dev worker status|stop`: the resident process that serves `review` and `build`."""

from __future__ import annotations

import os

import click

from dataops_dev.cli import emit_json, format_options, resident, resolve_format


@click.group()
def worker() -> None:
    """The resident worker that keeps dbt imported for `review` and `build`."""


def _state() -> dict[str, object]:
    location = resident.Location.current()
    pid = resident.running_pid(location) if location is not None else None
    return {
        "enabled": resident.enabled(),
        "setting": os.environ.get("DATAOPS_WORKER"),
        "ci": bool(os.environ.get("CI")),
        "socket": str(location.socket_path) if location is not None else None,
        "pid": pid,
        "refused": location.refused() if location is not None else None,
        "idle_seconds": resident.idle_seconds(),
    }


@worker.command("status")
@format_options(choices=("text", "json"))
def status(output_format: str, as_json: bool) -> None:
    """Whether review and build are served by a worker, and the one serving this code."""
    state = _state()
    if resolve_format(output_format, as_json) == "json":
        emit_json(state)
        return
    if not state["enabled"]:
        why = "DATAOPS_WORKER=" + str(state["setting"]) if state["setting"] else "CI is set"
        click.echo(f"off ({why}): every command runs in a process of its own")
    elif state["socket"] is None:
        click.echo("off: no private runtime directory (see DATAOPS_RUNTIME_DIR)")
    elif state["refused"]:
        click.echo(f"off for this installation: {state['refused']}")
    elif state["pid"] is None:
        click.echo("on, none running: the next review or build starts one when it finishes")
    else:
        click.echo(
            f"running: pid {state['pid']}, {state['socket']}; "
            f"leaves after {state['idle_seconds']:g} s without a command"
        )


@worker.command("stop")
def stop() -> None:
    """Stop the worker serving this code (commands it is running finish first)."""
    location = resident.Location.current()
    pid = resident.stop(location) if location is not None else None
    click.echo(f"stopped worker {pid}" if pid is not None else "no worker running")
