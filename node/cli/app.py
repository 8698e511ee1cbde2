"""The operator's command line: a thin layer over the library.

Errors are turned into one line on stderr and an exit code in exactly one place
(`_exit_code`): 2 for bad input, 3 for a bad data dir or config, 4 for a store problem,
1 for anything that went wrong with a peer. No traceback reaches an operator for an error
the node raised on purpose.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from node import __version__
from node.datadir import DataDir
from node.errors import ConfigError, ImportRejected, InputError, NodeError, PeerError, StoreError
from node.store.peers import PeerRecord

ENV_DATA_DIR = "AIF_NODE_DATA_DIR"


def console(stderr: bool) -> Console:
    """Lines are never broken for width (output is grepped and logged); tables get room."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


err = console(stderr=True)
out = console(stderr=False)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aif-node"


def _exit_code(exc: NodeError) -> int:
    if isinstance(exc, InputError):
        return 2
    if isinstance(exc, ConfigError):
        return 3
    if isinstance(exc, StoreError):
        return 4
    if isinstance(exc, PeerError):
        return 1
    return 1


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise SystemExit(code)


class _NodeGroup(click.Group):
    """Runs subcommands with the node's error mapping."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImportRejected as exc:
            for position, reason in exc.problems:
                err.print(f"{exc.locate(position)}: {reason}", markup=False, soft_wrap=True)
            more = exc.total_bad - len(exc.problems)
            if more > 0:
                err.print(f"... and {more} more invalid row(s)", markup=False)
            fail(
                f"{exc.path}: {exc.total_bad} invalid row(s); nothing was imported "
                "(fix them, or pass --skip-invalid to import the valid rows)",
                2,
            )
        except NodeError as exc:
            fail(str(exc), _exit_code(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130)


@click.group(cls=_NodeGroup)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=ENV_DATA_DIR,
    default=_default_data_dir,
    show_default=f"${ENV_DATA_DIR} or $XDG_DATA_HOME/aif-node",
    help="The node's data directory.",
)
@click.version_option(__version__, prog_name="aif-node")
@click.pass_context
def main(ctx: click.Context, data_dir: Path) -> None:
    """aif-node: find, privately, which clues other alliance members hold too."""
    ctx.obj = DataDir(data_dir)


pass_datadir = click.make_pass_decorator(DataDir)
format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress display on a terminal; nothing when output is piped or logged."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done: bar.update(task, completed=done)


def split_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))
    if not items:
        raise InputError("expected a comma-separated list, got nothing")
    return items


def audit_local(datadir: DataDir, action: str, peer: PeerRecord | None, detail: str) -> None:
    with datadir.open_store() as store:
        store.audit.append(
            datadir.audit_key(),
            "local",
            peer.node_id if peer else None,
            peer.name if peer else None,
            action,
            (),
            0,
            0,
            "OK",
            detail,
        )
