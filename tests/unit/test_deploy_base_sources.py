"""How deploy/base/build.sh picks the Debian mirror from a host's apt sources.

`--print-sources` stops before any Docker or network use, so these run anywhere with bash.
The host names below are reserved example names; no test reads the real /etc/apt.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "base" / "build.sh"


def sources(apt_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APT_SOURCES_DIR": str(apt_dir)}
    return subprocess.run(
        ["bash", str(SCRIPT), "--print-sources"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def make_apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_deb822_stanzas_with_comments_inside(tmp_path: Path) -> None:
    apt = make_apt_dir(
        tmp_path,
        {
            "sources.list.d/debian.sources": (
                "Types: deb\n"
                "# a comment line inside the stanza does not end it\n"
                "URIs: http://mirror.example/debian\n"
                "Suites: bookworm bookworm-updates\n"
                "Components: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                "\n"
                "Types: deb\n"
                "URIs: http://mirror.example/debian-security\n"
                "Suites: bookworm-security\n"
                "Components: main\n"
            )
        },
    )
    done = sources(apt)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "http://mirror.example/debian bookworm main",
        "http://mirror.example/debian bookworm-updates main",
        "http://mirror.example/debian-security bookworm-security main",
    ]


def test_disabled_source_only_and_other_suites_are_left_out(tmp_path: Path) -> None:
    apt = make_apt_dir(
        tmp_path,
        {
            "sources.list": (
                "deb [arch=amd64 signed-by=/k.gpg] http://a.example/debian bookworm main contrib\n"
                "deb-src http://b.example/debian bookworm main\n"
                "# deb http://c.example/debian bookworm main\n"
                "deb http://d.example/debian trixie main\n"
                "deb http://a.example/debian bookworm main contrib\n"
            ),
            "sources.list.d/multi.sources": (
                "Types: deb deb-src\n"
                "URIs: http://e.example/d http://f.example/d\n"
                "Suites: bookworm\n"
                "Components: main\n"
                "\n"
                "Enabled: no\n"
                "Types: deb\n"
                "URIs: http://g.example/d\n"
                "Suites: bookworm\n"
                "Components: main\n"
            ),
            "sources.list.d/vendor.sources.disabled": (
                "Types: deb\nURIs: http://h.example/d\nSuites: bookworm\nComponents: main\n"
            ),
        },
    )
    done = sources(apt)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "http://a.example/debian bookworm main contrib",
        "http://e.example/d bookworm main",
        "http://f.example/d bookworm main",
    ]


def test_no_usable_source_is_an_error(tmp_path: Path) -> None:
    apt = make_apt_dir(tmp_path, {"sources.list": "deb http://d.example/debian trixie main\n"})
    done = sources(apt)
    assert done.returncode == 1
    assert "no enabled 'deb' source for bookworm" in done.stderr
    assert done.stdout == ""
