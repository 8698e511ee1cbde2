"""Every `aif-node ...` command line in README.md and docs/*.md names a real command of the CLI
with real options (and, for a choice, a real value): the docs cannot drift from node.cli.

Command lines are read from fenced code blocks (a line ending in a backslash continues on the
next) and from inline code spans that start with `aif-node `. A failure lists each wrong
line as FILE:LINE with what is wrong in it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click

from node.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_PROGRAM = re.compile(r"aif-node(?=\s|$)")
_SPAN = re.compile(r"`([^`]+)`")
_COMMENT = re.compile(r"(^|\s)#.*$")
_SHELL_OPERATORS = set("();<>|&")


def command_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text after `aif-node`) for every invocation in `path`."""
    in_fence = False
    pending, start = "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence, pending = not in_fence, ""
            continue
        if not in_fence:
            for span in _SPAN.findall(line):
                if span.startswith("aif-node "):
                    yield number, span[len("aif-node ") :]
            continue
        if not pending:
            start = number
        pending += " " + _COMMENT.sub("", line).strip()
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        for found in _PROGRAM.finditer(pending):
            before = pending[: found.start()]
            # The program, not a path, an image (aif-node:1.0) or an option's value: a user
            # or unit name (sudo -u aif-node, journalctl -u aif-node).
            if before.split()[-1:] and before.split()[-1].startswith("-"):
                continue
            if before[-1:].isspace() or before[-1:] in ("", "=", "(") or before.endswith("/bin/"):
                yield start, pending[found.end() :]
        pending = ""


def problems_in(arguments: str) -> str | None:
    """What is wrong with `aif-node ARGUMENTS`, or None."""
    lexer = shlex.shlex(arguments, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:
        return f"cannot split the line: {exc}"
    command: click.Command = main
    path = ["aif-node"]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if set(token) <= _SHELL_OPERATORS:
            break
        if token.startswith("-") and token != "-":
            name, has_value, value = token.partition("=")
            if name == "--help":
                i += 1
                continue
            option = _option(command, name)
            if option is None:
                known = sorted(o for p in command.params for o in p.opts if o.startswith("--"))
                return (
                    f"`{' '.join(path)}` has no option {name} "
                    f"(it has: {', '.join(known) or 'none'})"
                )
            if not (option.is_flag or option.count):
                if not has_value:
                    value = tokens[i + 1] if i + 1 < len(tokens) else ""
                    i += 1
                wrong = _bad_choice(option, value)
                if wrong:
                    return f"`{' '.join(path)} {name}`: {wrong}"
            i += 1
            continue
        if isinstance(command, click.Group):
            sub = command.commands.get(token)
            if sub is None:
                return (
                    f"`{' '.join(path)}` has no command {token!r} "
                    f"(it has: {', '.join(sorted(command.commands))})"
                )
            command = sub
            path.append(token)
        i += 1
    return None


def _option(command: click.Command, name: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def _bad_choice(option: click.Option, value: str) -> str | None:
    """A lower-case value that is not one of the option's choices (an upper-case one is a
    placeholder such as FORMAT)."""
    if not isinstance(option.type, click.Choice) or not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
        return None
    choices = [str(c) for c in option.type.choices]
    if value in choices:
        return None
    return f"{value!r} is not one of {', '.join(choices)}"


def test_every_documented_command_line_exists() -> None:
    wrong, seen = [], 0
    for doc in DOCS:
        for number, arguments in command_lines(doc):
            seen += 1
            problem = problems_in(arguments)
            if problem:
                where = doc.relative_to(ROOT)
                wrong.append(f"{where}:{number}: aif-node {arguments.strip()}\n    {problem}")
    assert seen > 30, f"only {seen} command lines found: is the parser still reading the docs?"
    assert not wrong, "command lines that do not match the CLI:\n" + "\n".join(wrong)


def test_the_checker_finds_what_is_wrong() -> None:
    assert problems_in("--data-dir /d report --format html --output r.html") is None
    assert problems_in("peers add lender.json --kinds phone --budget 10") is None
    assert "no command 'frobnicate'" in (problems_in("frobnicate") or "")
    assert "has no option --colour" in (problems_in("report --colour") or "")
    assert "'xml' is not one of" in (problems_in("report --format xml") or "")
    assert "no command 'rotat'" in (problems_in("keys rotat") or "")
