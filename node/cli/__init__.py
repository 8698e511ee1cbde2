"""The operator's command line, `aif-node`: one module per group of commands.

Importing the command modules registers their commands on `main`.
"""

from node.cli import admin, config, match, peers, records, report, serve, status
from node.cli.app import main

__all__ = ["admin", "config", "main", "match", "peers", "records", "report", "serve", "status"]
