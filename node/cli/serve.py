"""Serving peers, and the health probe container runtimes call."""

from __future__ import annotations

import logging
import signal
import threading

import click

from node.cli.app import main, pass_datadir
from node.config import LOG_FORMATS, LOG_LEVELS
from node.datadir import DataDir
from node.errors import NodeError
from node.psi import tagset
from node.schedule import MatchSchedule
from node.telemetry import configure_logging, start_telemetry
from node.transport.client import health_check
from node.transport.server import NodeServer


def _refresh_loop(datadir: DataDir, stop: threading.Event, interval: float) -> None:
    """Keep the tag sets current in the background, so a peer's sync finds them ready."""
    log = logging.getLogger("node.serve")
    while not stop.is_set():
        try:
            with datadir.open_store() as store:
                for result in tagset.refresh(store, datadir.keyring):
                    if result.evaluated or result.updated or result.removed:
                        log.info(
                            "tag set %s epoch %d: %d new, %d changed, %d removed (version %d)",
                            result.kind,
                            result.epoch,
                            result.evaluated,
                            result.updated,
                            result.removed,
                            result.version,
                        )
        except NodeError as exc:
            log.error("tag set refresh failed: %s", exc)
        stop.wait(interval)


@main.command()
@click.option("--listen", metavar="HOST:PORT", envvar="AIF_NODE_LISTEN", help="Override config.")
@click.option(
    "--grace",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds for calls in flight at shutdown.",
)
@click.option(
    "--metrics",
    metavar="HOST:PORT",
    envvar="AIF_NODE_METRICS",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (overrides [metrics] listen).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    envvar="AIF_NODE_LOG_FORMAT",
    help="text, or json: one object per line (overrides [logging] format).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS),
    envvar="AIF_NODE_LOG_LEVEL",
    help="Overrides [logging] level.",
)
@pass_datadir
def serve(
    datadir: DataDir,
    listen: str | None,
    grace: float,
    metrics: str | None,
    log_format: str | None,
    log_level: str | None,
) -> None:
    """Serve pinned peers until SIGTERM or Ctrl-C."""
    config = datadir.config().with_overrides(
        log_format=log_format, log_level=log_level, metrics_listen=metrics
    )
    if listen:
        config = config.with_listen(listen)
    configure_logging(config.logging)
    identity = datadir.identity()
    audit_key = datadir.audit_key()
    telemetry = start_telemetry(datadir, config)  # binds the metrics port before serving
    try:
        server = NodeServer(
            identity=identity,
            name=config.name,
            listen=config.listen,
            open_store=datadir.open_store,
            keyring=datadir.keyring,
            kinds=datadir.kinds(),
            audit_key=audit_key,
            limits=config.serve,
            listeners=telemetry.listeners,
        )
    except BaseException:
        telemetry.close()
        raise
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    refresher = threading.Thread(
        target=_refresh_loop, args=(datadir, stop, 5.0), name="tagset-refresh", daemon=True
    )
    schedule = MatchSchedule(
        open_store=datadir.open_store,
        identity=identity,
        config=config,
        audit_key=audit_key,
        lock_dir=datadir.lock_dir,
        on_outcome=telemetry.observe_match,
        first_delay_s=min(10.0, config.schedule.match_interval),
    )
    # A daemon: a scheduled match still running after `grace` is abandoned at exit; the
    # store stays consistent and the next start repeats only what was not yet cached.
    scheduler = threading.Thread(
        target=schedule.run, args=(stop,), name="match-schedule", daemon=True
    )
    server.start()
    refresher.start()
    scheduler.start()
    try:
        stop.wait()
    finally:
        server.stop(grace)
        refresher.join(timeout=grace)
        scheduler.join(timeout=grace)
        telemetry.close()


@main.command()
@click.option("--timeout", type=float, default=5.0, show_default=True)
@pass_datadir
def health(datadir: DataDir, timeout: float) -> None:
    """Exit 0 when this node's server answers SERVING (for container health checks)."""
    status = health_check(datadir.config().listen, datadir.identity(), timeout_s=timeout)
    click.echo(status)
    if status != "SERVING":
        raise SystemExit(1)
