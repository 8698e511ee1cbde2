"""The peer baseline: OpenMined's PSI library on the same sets, in one process, no network.

    python -m bench.baseline CLIENT.csv SERVER.csv     prints one JSON object

OpenMined PSI (`openmined-psi`) is ECDH-PSI over P-256 with a C++ core. Its whole protocol
is timed step by step: the server's setup message (it hashes and encrypts its own set:
our tag set's counterpart), the client's request (hash and blind), the server's
processing (one exponentiation per element) and the client's intersection. The RAW data
structure is used, so the result is exact like ours (GCS and Bloom filters trade a
false-positive rate for size). The sizes of the three protobuf messages are what it would
put on a wire, before any transport framing.

When the library is not importable the object says `skipped` and why.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.data import read_values

PACKAGE = "openmined-psi"


def run(client_csv: Path, server_csv: Path) -> dict[str, Any]:
    try:
        import private_set_intersection.python as psi  # type: ignore[import-untyped]
    except ImportError as exc:
        return {"skipped": f"{PACKAGE} is not importable: {exc}"}
    client_items = read_values(client_csv)
    server_items = read_values(server_csv)
    steps: dict[str, float] = {}
    start = time.perf_counter()
    server = psi.server.CreateWithNewKey(True)
    client = psi.client.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(0.0, len(client_items), server_items, psi.DataStructure.RAW)
    steps["server_setup_s"] = time.perf_counter() - start
    t = time.perf_counter()
    request = client.CreateRequest(client_items)
    steps["client_request_s"] = time.perf_counter() - t
    t = time.perf_counter()
    response = server.ProcessRequest(request)
    steps["server_process_s"] = time.perf_counter() - t
    t = time.perf_counter()
    intersection = client.GetIntersection(setup, response)
    steps["client_intersection_s"] = time.perf_counter() - t
    total = time.perf_counter() - start
    return {
        "library": f"{PACKAGE} {getattr(psi, '__version__', '?')}",
        "data_structure": "RAW",
        "client_size": len(client_items),
        "server_size": len(server_items),
        "intersection": len(intersection),
        "total_s": total,
        "steps": steps,
        "payload_bytes": {
            "setup": setup.ByteSize(),
            "request": request.ByteSize(),
            "response": response.ByteSize(),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client_csv", type=Path)
    parser.add_argument("server_csv", type=Path)
    args = parser.parse_args()
    print(json.dumps(run(args.client_csv, args.server_csv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
