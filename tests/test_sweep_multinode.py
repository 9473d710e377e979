"""A sweep across two Ray nodes survives losing one: its trial is retried on the other from its checkpoint.

The cluster is this test's own (`ray start --block` in new process groups, a private port and temp dir), so
stopping it never touches another Ray on the machine.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

import pytest
import ray

from conftest import REPO
from test_sweep import epoch_tokens, reports, trial_dirs
from test_sweep_faults import finished, wait_for
from sweep_support import sweep_command
from sweep.config import load_config

pytestmark = pytest.mark.slow

# A lost node is noticed within a few seconds instead of the default ~30.
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                   "RAY_health_check_failure_threshold": "3", "RAY_USAGE_STATS_ENABLED": "0",
                   "RAY_AUTH_MODE": "token"}  # the same mode on every node and the driver


def free_port():
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def start_node(*args, temp_dir, wrapper=()):
    """`ray start --block` with args (a later --num-cpus overrides the 1 here), run through wrapper if any."""
    command = [*wrapper, "ray", "start", "--num-cpus", "1", "--temp-dir", temp_dir,
               "--block", *args]
    node = subprocess.Popen(command, env={**os.environ, **FAST_NODE_DEATH}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    for line in node.stdout:  # `ray start --block` says when the node is up, then blocks
        log.append(line)
        if "Ray runtime started" in line:
            threading.Thread(target=node.stdout.read, daemon=True).start()  # keep the pipe drained
            return node
    raise AssertionError("ray start failed:\n" + "".join(log))


def kill_node(node):
    """SIGKILL the node's own process group: its raylet and workers (and GCS on the head) die at once."""
    try:
        os.killpg(node.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    node.wait()


@pytest.fixture
def two_nodes():
    temp_dir = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    address = f"{ray.util.get_node_ip_address()}:{free_port()}"
    nodes = [start_node("--head", "--port", address.split(":")[1], "--include-dashboard", "false",
                        temp_dir=temp_dir)]
    try:
        nodes.append(start_node("--address", address, temp_dir=temp_dir))
        yield address, nodes[1]
    finally:
        for node in reversed(nodes):
            kill_node(node)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_sweep_completes_when_a_node_dies_mid_run(sweep_data, two_nodes, tmp_path):
    address, worker = two_nodes
    # The whole train split (~100k tokens) in small batches: trials long enough to be caught mid-epoch.
    overrides = ["sizes=[cpu-small]", "train.max_train_tokens=0", "train.batch_size=4", "train.checkpoint_every=40",
                 "train.report_every=20"]
    command = sweep_command(sweep_data, tmp_path, "two-nodes", overrides)
    driver = subprocess.Popen(command, cwd=REPO, env={**os.environ, **FAST_NODE_DEATH, "RAY_ADDRESS": address},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    experiment = tmp_path / "two-nodes"

    def both_trials_checkpointed():  # one CPU per node and per trial: one trial runs on each node
        assert driver.poll() is None, f"the sweep ended early:\n{driver.stdout.read()}"
        dirs = trial_dirs(experiment) if experiment.exists() else []
        return len(dirs) == 2 and all(any(p.name.startswith("checkpoint_") for p in d.iterdir()) for d in dirs)

    try:
        wait_for(both_trials_checkpointed, 150, "both trials to checkpoint")
        assert not any(map(finished, trial_dirs(experiment))), "a trial ended before the node could be killed"
        kill_node(worker)
        output = driver.communicate(timeout=180)[0]
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, output[-5000:]
    finals = [reports(d)[-1] for d in trial_dirs(experiment)]
    tokens = epoch_tokens(sweep_data, load_config("tiny", overrides))
    assert [f["tokens_seen"] for f in finals] == [tokens, tokens]
    assert any(f["iterations_since_restore"] < f["training_iteration"] for f in finals), \
        "no trial was restored from a checkpoint after the node died"
    assert json.loads((experiment / "sweep.json").read_text())["data"]["location"] == str(sweep_data)
