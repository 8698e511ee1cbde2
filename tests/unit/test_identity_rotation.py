"""`identity rotate` on the data dir: a new key and node ID, the old kept, crashes mended."""

from pathlib import Path

from node.config import NodeConfig
from node.datadir import DataDir
from node.identity import generate_identity


def _node(tmp_path: Path) -> DataDir:
    datadir = DataDir(tmp_path / "node")
    datadir.init(NodeConfig(name="bank", listen="127.0.0.1:7443", advertise=()))
    return datadir


def test_rotation_gives_a_new_id_and_retires_the_old_key(tmp_path: Path) -> None:
    datadir = _node(tmp_path)
    old, new = datadir.rotate_identity()
    assert old.node_id != new.node_id
    current = datadir.identity()
    assert current.node_id == new.node_id and current.key_matches_certificate()
    assert datadir.key_path.stat().st_mode & 0o777 == 0o600
    retired = sorted(p.name for p in datadir.retired_dir.iterdir())
    assert len(retired) == 2 and retired[0].endswith(".crt") and retired[1].endswith(".key")
    assert datadir.retired_dir.stat().st_mode & 0o777 == 0o700
    key = next(datadir.retired_dir.glob("*.key"))
    assert key.stat().st_mode & 0o777 == 0o600 and key.read_bytes() == old.key_pem
    assert not list(datadir.root.glob("*.next"))


def test_a_crash_after_the_key_swap_is_finished(tmp_path: Path) -> None:
    datadir = _node(tmp_path)
    new = generate_identity("bank")
    # As if killed between the two renames: node.key is new, node.crt is still old.
    (datadir.root / "node.crt.next").write_bytes(new.cert_pem)
    datadir.key_path.write_bytes(new.key_pem)
    assert datadir.identity().node_id == new.node_id
    assert not (datadir.root / "node.crt.next").exists()


def test_a_crash_before_the_key_swap_keeps_the_old_identity(tmp_path: Path) -> None:
    datadir = _node(tmp_path)
    before = datadir.identity()
    new = generate_identity("bank")
    # As if killed while writing the next key: only the next certificate is complete.
    (datadir.root / "node.crt.next").write_bytes(new.cert_pem)
    assert datadir.identity() == before
    assert not (datadir.root / "node.crt.next").exists()
    (datadir.root / "node.crt.next").write_bytes(new.cert_pem)
    (datadir.root / "node.key.next").write_bytes(new.key_pem)
    assert datadir.identity() == before
    assert not list(datadir.root.glob("node.*.next"))
