"""The config as the node runs with it: every setting, defaults filled in, as a TOML document.

`config.toml` holds only what an operator changed; this is the whole picture, for
`aif-node config show`.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from typing import Any

import tomli_w

from node.config import SECTIONS, NodeConfig


def effective_document(config: NodeConfig) -> dict[str, dict[str, Any]]:
    """Every table and setting of `config`, as TOML would hold them (durations in seconds)."""
    doc: dict[str, dict[str, Any]] = tomllib.loads(config.to_toml())
    for name in SECTIONS:
        doc[name] = asdict(getattr(config, name))
    return doc


def effective_toml(config: NodeConfig) -> str:
    return tomli_w.dumps(effective_document(config))
