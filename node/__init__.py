"""aif-node: a federation node for private clue collision between alliance members."""

__version__ = "0.1.0"
