"""Local inputs on a cluster whose other node cannot see them: a real two-node Ray on this machine, the second node
in a mount namespace of its own (`unshare -m`, root only) where a tmpfs hides the folder of inputs and output.
The head has no CPU, so every conversion runs on the node that cannot read the files: each must come back
converted from its real bytes, read on the driver's node and sent, where it would have been rejected as
unreadable."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import ray

from conftest import REPO
from test_sweep_multinode import FAST_NODE_DEATH, free_port, kill_node, start_node

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")]

BOOK = """X:1
T:Hidden reel
M:4/4
L:1/8
K:G
GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|GABc dedB|dedB dedB|c2ec B2dB|A2F2 G4|

X:2
T:Hidden jig
M:6/8
L:1/8
K:D
FAA DAA|FAA d2e|fdd ecA|BGE E2D|FAA DAA|FAA d2e|fdd ecA|BGE D3|
"""


@pytest.fixture
def hidden_from_a_node(midi_dir):
    """(folder, address, worker): inputs in a folder the worker node's mount namespace covers with a tmpfs."""
    hidden = Path(tempfile.mkdtemp(prefix="hidden-", dir="/tmp"))
    temp_dir = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # apart from `hidden`: both nodes need it
    inputs = hidden / "in"
    inputs.mkdir()
    for path in sorted((midi_dir / "pop909").glob("*.mid"))[:8]:
        shutil.copy(path, inputs)
    (inputs / "book.abc").write_text(BOOK)
    port = free_port()
    address = f"{ray.util.get_node_ip_address()}:{port}"
    hide = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs hidden "$0" && exec "$@"', str(hidden)]
    nodes = [start_node("--head", "--port", str(port), "--include-dashboard", "false", "--num-cpus", "0",
                        temp_dir=temp_dir)]
    try:
        nodes.append(start_node("--address", address, "--num-cpus", "2", temp_dir=temp_dir, wrapper=hide))
        yield hidden, address, nodes[1]
    finally:
        for node in reversed(nodes):
            kill_node(node)
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(hidden, ignore_errors=True)


def test_local_inputs_a_node_cannot_see_are_read_on_the_driver_node(hidden_from_a_node):
    hidden, address, worker = hidden_from_a_node
    midi = sorted((hidden / "in").glob("*.mid"))
    seen_by_worker = subprocess.run(["nsenter", "-t", str(worker.pid), "-m", "--", "ls", "-A", str(hidden)],
                                    capture_output=True, text=True)
    assert seen_by_worker.returncode == 0 and seen_by_worker.stdout == ""  # the worker sees an empty tmpfs
    out = hidden / "out"
    run = subprocess.run([sys.executable, str(REPO / "preprocessing" / "run.py"), "--input", str(hidden / "in"),
                          "--input", str(hidden / "in" / "book.abc"), "--out", str(out), "--address", address, "--split", "0.5,0.25,0.25"],
                         cwd=REPO, env={**os.environ, **FAST_NODE_DEATH}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("source")
    assert len(manifest) == len(midi) + 2
    assert (manifest.reason != "unreadable").all(), manifest[manifest.reason == "unreadable"].index.tolist()
    assert set(manifest.status) == {"ok"}, manifest[["status", "reason"]]
    for path in midi:  # the md5 of each file's own bytes: what the worker converted was the file
        assert manifest.loc[str(path), "md5"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert {f"{hidden / 'in' / 'book.abc'}#{n}" for n in (1, 2)} <= set(manifest.index)  # rendered, then sent
