"""Faults in a real three-member mesh (deploy/docker-compose.yml): bank, lender, platform.

One Compose project for the module: the images are built once (`deploy/mesh.sh build`: the
base when missing, the wheelhouse, the node image, all cached when unchanged), the mesh comes up
and every member pins the others through its start script. Each scenario checks afterwards, on
each member it involved, SQLite's integrity check (through the node's Store) and
`aif-node audit verify`, and leaves every member running (a's killed lender is started by b, or
by the next scenario when b did not run).

The scenarios run in file order; b continues from a. Extra clues imported at test time use the
147 and 148 mobile prefixes, which the sample data never uses, so the ground truth of the
collision reports stays exact throughout.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.transport.grpc_options import KEEPALIVE_TIMEOUT_MS
from tests.mesh.compose_mesh import (
    CACHED_AT_LEAST,
    DATA_DIR,
    DEPLOY,
    INTEGRITY,
    MEMBERS,
    TIMINGS,
    Background,
    Mesh,
    run,
    timed,
)

pytestmark = pytest.mark.mesh

KILL_ROWS = 40_000
"""Extra phone clues at the bank for scenario a: about 5 s of evaluation per peer here, so the
kill lands in the middle of the stream."""
CUT_ROWS = 20_000
"""Extra phone clues at the bank for scenario c's cut during a match."""
CONNECT_TIMEOUT_S = 5.0
STREAM_TIMEOUT_S = 10.0
LOST_DATA_S = KEEPALIVE_TIMEOUT_MS / 1000
"""gRPC cannot end a call while data it sent sits unacknowledged in TCP; the connection is
closed this long after the cut (TCP_USER_TIMEOUT, which gRPC sets to the keepalive timeout), so
a cut that lands while a batch is on the wire ends the match then, even past a shorter deadline."""
EXIT_SLACK_S = 5.0
"""Time for the failing command to record its run and exit, on a loaded two-core machine."""
CONFIG = f"{DATA_DIR}/config.toml"


def phone_file(path: Path, prefix: str, count: int, seed: int) -> Path:
    """`count` distinct mobile numbers starting with `prefix`, as a one-column CSV."""
    rng = random.Random(seed)
    values: set[str] = set()
    while len(values) < count:
        values.add(f"{prefix}{rng.randrange(10**8):08d}")
    path.write_text("phone\n" + "\n".join(sorted(values)) + "\n", encoding="utf-8")
    return path


def failure_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("match failed:")]


def kinds_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["kind"]: k for k in result["kinds"]}


def used_by_peer(status: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["used_this_epoch"] for p in status["peers"]}


@pytest.fixture(scope="module")
def mesh(compose_command: list[str]) -> Iterator[Mesh]:
    image = os.environ.get("AIF_NODE_IMAGE", "aif-node:dev")
    env = {**os.environ, "PYTHON": sys.executable, "AIF_NODE_IMAGE": image}
    with timed("build (total)"):
        built = run(["bash", str(DEPLOY / "mesh.sh"), "build"], env=env, timeout=1800)
    for name, seconds in re.findall(r"^mesh: (build: [^:]+): ([\d.]+)s$", built.stderr, re.M):
        TIMINGS[name] = float(seconds)
    project = f"aifmesh-test-{os.getpid()}-{secrets.token_hex(3)}"
    mesh = Mesh(project, compose_command, image)
    try:
        with timed("mesh up, healthy and fully pinned"):
            mesh.up()
            mesh.wait_healthy()
            for member in MEMBERS:
                mesh.wait_pinned(member, tuple(m for m in MEMBERS if m != member))
        yield mesh
    finally:
        mesh.down()
        left = mesh.leftovers()
        assert not left, f"left behind by {project}: {left}"


@pytest.fixture(scope="module")
def killed() -> dict[str, Any]:
    """What scenario a leaves for scenario b."""
    return {}


def ensure_running(mesh: Mesh, *members: str) -> None:
    """Start members an earlier, failed scenario may have left stopped."""
    for member in members:
        if mesh.state(member) != "running":
            run(["docker", "start", mesh.cid(member)])
    mesh.wait_healthy(*members)


def test_every_member_reports_the_ground_truth(mesh: Mesh) -> None:
    with timed("baseline: all match at once, reports checked"):
        matches = {
            m: Background(["docker", "exec", mesh.cid(m), "aif-node", "match"]) for m in MEMBERS
        }
        try:
            for member, match in matches.items():
                code, out, err, _ = match.finish()
                assert code == 0, f"{member}: {out}\n{err}"
        finally:
            for match in matches.values():
                match.stop()
        for member in MEMBERS:
            mesh.assert_report(member)
            mesh.assert_intact(member)


def test_a_member_killed_during_a_match(mesh: Mesh, tmp_path: Path, killed: dict[str, Any]) -> None:
    """The lender dies in the middle of the bank's evaluation stream: the bank's match goes on
    to the platform, exits 1 naming the lender, and no store is damaged."""
    with timed("a: member killed during a match"):
        lender = mesh.status("lender")
        lender_id, epoch = lender["node_id"], lender["epoch"]
        big = phone_file(tmp_path / "bank-extra.csv", "147", KILL_ROWS, seed=1)
        mesh.copy_in("bank", big, "/tmp/bank-extra.csv")
        mesh.node("bank", "import", "/tmp/bank-extra.csv", "--kind", "phone")
        phones = mesh.status("bank")["records"]["phone"]
        before = mesh.cached("bank", lender_id, "phone", epoch)

        match = Background(
            ["docker", "exec", mesh.cid("bank"), "aif-node", "match", "--format", "json"]
        )
        try:
            # The first answered batch is in the bank's store: the stream is under way.
            mesh.python(
                "bank", CACHED_AT_LEAST, lender_id, "phone", str(epoch), str(before + 1), "60"
            )
            run(["docker", "kill", mesh.cid("lender")])
            code, out, err, _ = match.finish(timeout=180)
        finally:
            match.stop()

        assert code == 1, f"{out}\n{err}"
        lines = failure_lines(err)
        assert len(lines) == 1, err
        assert lines[0].startswith("match failed: peer 'lender'"), lines
        results = {r["peer"]: r for r in json.loads(out)}
        assert results["lender"]["ok"] is False
        assert "'lender'" in results["lender"]["error"]
        platform = kinds_of(results["platform"])  # the match went on to the next peer
        assert results["platform"]["ok"] is True
        assert platform["phone"]["evaluated"] + platform["phone"]["cached"] == phones

        cached = mesh.cached("bank", lender_id, "phone", epoch)
        assert before < cached < phones, "the kill must land inside the evaluation stream"
        assert mesh.state("lender") == "exited"

        mesh.assert_intact("bank")
        assert mesh.offline_python("lender", INTEGRITY) == "ok"
        assert "intact" in mesh.offline("lender", "audit", "verify").stdout
        killed.update(
            lender_id=lender_id,
            epoch=epoch,
            phones=phones,
            cached=cached,
            cached_id_cards=mesh.cached("bank", lender_id, "id_card", epoch),
            status=json.loads(mesh.offline("lender", "status", "--format", "json").stdout),
        )


def test_b_killed_member_restarted(mesh: Mesh, killed: dict[str, Any]) -> None:
    """The lender comes back with its identity, records and budgets; the bank's next match
    evaluates exactly the records it has no answer for yet."""
    if not killed:
        pytest.skip("scenario a did not leave a killed member")
    with timed("b: killed member restarted, match resumed"):
        run(["docker", "start", mesh.cid("lender")])
        mesh.wait_healthy("lender")
        after = mesh.status("lender")
        offline = killed["status"]
        assert after["node_id"] == offline["node_id"] == killed["lender_id"]
        assert after["epoch"] == offline["epoch"]
        assert after["records"] == offline["records"]
        assert used_by_peer(after) == used_by_peer(offline)
        # Every answer the bank stored was charged to it first.
        assert used_by_peer(after)["bank"] >= killed["cached"] + killed["cached_id_cards"]

        [result] = mesh.node_json("bank", "match", "--peer", "lender")
        assert result["ok"] is True, result
        phone = kinds_of(result)["phone"]
        assert phone["cached"] == killed["cached"] > 0
        assert phone["evaluated"] == killed["phones"] - killed["cached"] > 0
        assert kinds_of(result)["id_card"]["evaluated"] == 0
        evaluated = sum(k["evaluated"] for k in result["kinds"])
        assert (
            used_by_peer(mesh.status("lender"))["bank"] == used_by_peer(after)["bank"] + evaluated
        )

        mesh.assert_report("bank")
        for member in ("bank", "lender"):
            mesh.assert_intact(member)


def test_c_member_cut_off_from_the_network(mesh: Mesh, tmp_path: Path) -> None:
    """The platform loses its network: the bank's match fails within its deadline before a
    match, within its deadline or the bound on unacknowledged data during one, and succeeds
    once the platform is back."""
    ensure_running(mesh, *MEMBERS)
    network, platform_cid = mesh.network(), mesh.cid("platform")
    platform = mesh.status("platform")
    platform_id, epoch = platform["node_id"], platform["epoch"]
    original = mesh.read_file("bank", CONFIG)
    short = (
        f"\n[match]\nconnect_timeout_s = {CONNECT_TIMEOUT_S}\ncall_timeout_s = 5.0\n"
        f"stream_timeout_s = {STREAM_TIMEOUT_S}\n"
    )
    connected = True

    def disconnect() -> None:
        nonlocal connected
        run(["docker", "network", "disconnect", network, platform_cid])
        connected = False

    def reconnect() -> None:
        nonlocal connected
        # The service name is the alias the other members dial (the address on its card).
        run(["docker", "network", "connect", "--alias", "platform", network, platform_cid])
        connected = True

    try:
        mesh.write_file("bank", CONFIG, original + short)
        with timed("c1: match against a cut-off member"):
            disconnect()
            start = time.monotonic()
            done = mesh.node("bank", "match", "--peer", "platform", check=False)
            elapsed = time.monotonic() - start
            assert done.returncode == 1, done.stdout + done.stderr
            [line] = failure_lines(done.stderr)
            assert line.startswith("match failed: peer 'platform'") and "unreachable" in line
            assert elapsed < 2 * CONNECT_TIMEOUT_S, (
                f"{elapsed:.1f} s for a {CONNECT_TIMEOUT_S} s deadline"
            )
            TIMINGS["c1: failing match command"] = elapsed
            reconnect()

        with timed("c2: member cut off during a match"):
            big = phone_file(tmp_path / "bank-cut.csv", "148", CUT_ROWS, seed=2)
            mesh.copy_in("bank", big, "/tmp/bank-cut.csv")
            mesh.node("bank", "import", "/tmp/bank-cut.csv", "--kind", "phone")
            phones = mesh.status("bank")["records"]["phone"]
            before = mesh.cached("bank", platform_id, "phone", epoch)
            match = Background(
                ["docker", "exec", mesh.cid("bank"), "aif-node", "match", "--peer", "platform"]
            )
            try:
                mesh.python(
                    "bank", CACHED_AT_LEAST, platform_id, "phone", str(epoch), str(before + 1), "60"
                )
                cut = time.monotonic() - match.started
                disconnect()
                TIMINGS["c2: docker network disconnect"] = time.monotonic() - match.started - cut
                code, out, err, elapsed = match.finish()
            finally:
                match.stop()
            assert code == 1, out + err
            [line] = failure_lines(err)
            assert line.startswith("match failed: peer 'platform'"), line
            assert f"no answer within {STREAM_TIMEOUT_S:g} s" in line, line
            # The stream began before the cut, so its deadline falls within STREAM_TIMEOUT_S
            # of the cut; a batch caught on the wire holds the call until LOST_DATA_S.
            bound = max(STREAM_TIMEOUT_S, LOST_DATA_S) + EXIT_SLACK_S
            assert elapsed - cut < bound, (
                f"failed {elapsed - cut:.1f} s after the cut (at {cut:.1f} s), not within "
                f"{bound:g} s: the {STREAM_TIMEOUT_S:g} s deadline or the {LOST_DATA_S:g} s "
                "bound on unacknowledged data"
            )
            TIMINGS["c2: failing match command"] = elapsed
            TIMINGS["c2: failure after the cut"] = elapsed - cut
            cached = mesh.cached("bank", platform_id, "phone", epoch)
            assert before < cached < phones, "the cut must land inside the evaluation stream"
    finally:
        if not connected:
            reconnect()
        mesh.write_file("bank", CONFIG, original)

    with timed("c3: member reconnected, match resumed"):
        results = {r["peer"]: r for r in mesh.node_json("bank", "match")}
        assert all(r["ok"] for r in results.values()), results
        phone = kinds_of(results["platform"])["phone"]
        assert phone["cached"] == cached
        assert phone["evaluated"] == phones - cached
        mesh.assert_report("bank")
        for member in ("bank", "platform"):
            mesh.assert_intact(member)


def test_d_member_with_a_new_certificate(mesh: Mesh, tmp_path: Path) -> None:
    """The bank is re-made under the same name (fresh data dir: new key, new node ID). The
    others refuse it, and say so, until their operators re-pin its new card by hand."""
    ensure_running(mesh, *MEMBERS)
    others = ("lender", "platform")
    with timed("d: member re-made with a new certificate"):
        old_id = mesh.node_id("bank")
        mesh.compose("rm", "--stop", "--force", "bank")
        run(["docker", "volume", "rm", mesh.volume("bank-data")])
        mesh.up("bank")
        mesh.wait_healthy("bank")
        mesh.wait_pinned("bank", others)
        new_id = mesh.node_id("bank")
        assert new_id != old_id

        warning = f"WARNING: bank published a card with a new identity ({new_id}"
        for other in others:
            deadline = time.monotonic() + 60
            while warning not in mesh.logs(other):
                assert time.monotonic() < deadline, f"{other} never logged: {warning}"
                time.sleep(0.5)
            pinned = {p["name"]: p["node_id"] for p in mesh.node_json(other, "peers", "list")}
            assert pinned["bank"] == old_id, "the start script must not re-pin a new identity"

            done = mesh.node(other, "match", "--peer", "bank", check=False)
            assert done.returncode == 1, done.stdout + done.stderr
            [line] = failure_lines(done.stderr)
            assert line.startswith("match failed: peer 'bank'"), line
            assert "not the pinned node" in line, line
            [entry] = mesh.node_json(other, "audit", "show", "--peer", "bank", "--limit", "1")
            assert (entry["direction"], entry["action"]) == ("initiated", "match")
            assert entry["status"] != "OK" and "not the pinned node" in entry["detail"], entry

        # The operators get the new card out of band and check its node ID before pinning it.
        card_path = tmp_path / "bank.card.json"
        card_path.write_text(mesh.node("bank", "card").stdout, encoding="utf-8")
        assert json.loads(card_path.read_text(encoding="utf-8"))["node_id"] == new_id
        for other in others:
            mesh.copy_in(other, card_path, "/tmp/bank.card.json")
            mesh.node(other, "peers", "remove", "bank")
            mesh.node(other, "peers", "add", "/tmp/bank.card.json")
            [result] = mesh.node_json(other, "match", "--peer", "bank")
            assert result["ok"] is True, result
        assert all(r["ok"] for r in mesh.node_json("bank", "match"))

        for member in MEMBERS:
            mesh.assert_report(member)
            mesh.assert_intact(member)
