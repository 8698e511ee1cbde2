"""Checking a node's config and data dir before starting it, and showing what it runs with."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict

import click

from node.cli.app import main, out, pass_datadir
from node.configdoc import effective_toml
from node.datadir import DataDir
from node.selfcheck import FAIL, WARN, check_node

CHECK_FAILED = 3
"""The exit code of a check with any FAIL: the same as a command refused for a bad config."""


@main.group(name="config")
def config_() -> None:
    """The config file and the data dir: check them, show the settings in effect."""


@config_.command(name="check")
@click.option(
    "--bind",
    is_flag=True,
    help="Also bind the listen and metrics ports for a moment (fails while serve runs).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_datadir
def config_check(datadir: DataDir, bind: bool, fmt: str) -> None:
    """Check the node without starting it.

    Config, key files and their modes, certificate, store (read-only), audit log, pinned
    peers and addresses; one line each. Exit 3 on any FAIL; warnings pass.
    """
    findings = check_node(datadir, bind=bind)
    counts = Counter(f.status for f in findings)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "data_dir": str(datadir.root),
                    "failures": counts[FAIL],
                    "warnings": counts[WARN],
                    "checks": [asdict(f) for f in findings],
                },
                indent=2,
            )
        )
    else:
        for f in findings:
            out.print(f"{f.status:<4}  {f.subject}: {f.message}", markup=False)
        out.print(
            f"{len(findings)} checks: {counts[FAIL]} failed, {counts[WARN]} warning(s)",
            markup=False,
        )
    if counts[FAIL]:
        raise SystemExit(CHECK_FAILED)


@config_.command(name="show")
@pass_datadir
def config_show(datadir: DataDir) -> None:
    """Print the settings in effect, every default filled in, as TOML."""
    config = datadir.config()
    click.echo(f"# {datadir.config_path}, with every default filled in; durations in seconds")
    click.echo(effective_toml(config), nl=False)
