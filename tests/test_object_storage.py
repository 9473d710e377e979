"""The cluster recipe on object storage, against real servers on localhost: S3 (moto's) and Google Cloud
Storage (gcp-storage-emulator's). MIDI files are read from the bucket, a sweep's data and results live in it,
and the analysis of those results is read back from it.

The commands run as a user runs them, in subprocesses that start their own local Ray, so that every Ray
worker gets the environment pointing the cloud clients (pyarrow's included) at the local server. The
Google Cloud bucket is reached as gs://anonymous@bucket, as a public bucket is: the emulator checks no
credentials, and without them pyarrow would look for a GCP metadata server."""

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from gcp_storage_emulator.server import create_server
from moto.server import ThreadedMotoServer
from pyarrow import fs as pafs

from analysis.load import local_folder
from conftest import REPO
from preprocessing.abc_clean import Limits
from preprocessing.abc_tools import MIDI2ABC_FLAGS
from preprocessing.convert import convert_batch
from preprocessing.inputs import resolve_inputs

pytestmark = pytest.mark.slow


@dataclass
class Store:
    server_env: dict  # what points a process's cloud clients at the server
    prefix: str  # what a bucket's name follows in a URI
    filesystem: pafs.FileSystem  # this test's own client of the server

    @property
    def env(self):
        """The environment of a process that uses the server."""
        return {**os.environ, **self.server_env}

    def uri(self, path):
        return f"{self.prefix}{path}"

    def point_here(self, monkeypatch):
        """Point this process's cloud clients (pyarrow's) at the server, for the rest of the test."""
        for name, value in self.server_env.items():
            monkeypatch.setenv(name, value)

    def source(self, path):
        """How the manifest names an object: its URI without the options."""
        return f"{self.prefix.split('://')[0]}://{path}"

    def put(self, path, data):
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(data)

    def read(self, path):
        with self.filesystem.open_input_stream(path) as stream:
            return stream.read()

    def files(self, folder):
        infos = self.filesystem.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
        return [info.path for info in infos if info.type == pafs.FileType.File]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", params=["s3", "gs"])
def store(request):
    """A Store on a fresh local server, with the buckets "lakh" and "study"."""
    if request.param == "s3":
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        endpoint = "{}:{}".format(*server.get_host_and_port())
        env = {"AWS_ENDPOINT_URL": f"http://{endpoint}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
        filesystem = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1", scheme="http",
                                       endpoint_override=endpoint, allow_bucket_creation=True)
        prefix = "s3://"
    else:
        port = free_port()
        endpoint = f"127.0.0.1:{port}"
        server = create_server("127.0.0.1", port, in_memory=True)
        server.start()
        env = {"CLOUD_STORAGE_EMULATOR_ENDPOINT": f"http://{endpoint}"}
        filesystem = pafs.GcsFileSystem(anonymous=True, scheme="http", endpoint_override=endpoint, project_id="test",
                                        retry_time_limit=timedelta(seconds=10))
        prefix = "gs://anonymous@"
    for bucket in ("lakh", "study"):
        filesystem.create_dir(bucket)
    yield Store(env, prefix, filesystem)
    server.stop()


def run(command, env, timeout=300, code=0):
    done = subprocess.run([sys.executable, *command], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == code, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_a_bucket_folder_is_read_through_ray_like_local_files(store, midi_dir, tmp_path):
    """Each MIDI object gets one manifest row with its URI and the md5 of its bytes, and converts to the same
    tune as its local original; a local file given with the bucket is read in the same run."""
    *originals, local_input = sorted((midi_dir / "pop909").glob("*.mid"))[:4]
    objects = {f"midi/{p.name}": p.read_bytes() for p in originals}
    objects["midi/sub/copy of 001.mid"] = originals[0].read_bytes()
    objects["midi/sub/bad $(name).MID"] = b"not a MIDI file"
    objects["midi/readme.txt"] = b"not an input"
    for key, body in objects.items():
        store.put(f"lakh/{key}", body)

    out = tmp_path / "data"
    command = ["preprocessing/run.py", "--input", store.uri("lakh/midi"), "--input", str(local_input), "--out",
               str(out), "--num-cpus", "2"]
    run([*command, "--quiet"], store.env, timeout=120)  # ~15 s; the timeout, as a read without credentials hangs
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("source")
    midi_keys = sorted(key for key in objects if key.lower().endswith(".mid"))
    sources = [store.source(f"lakh/{key}") for key in midi_keys]
    assert sorted(manifest.index) == sorted([*sources, str(local_input.resolve())])
    assert [manifest.md5[store.source(f"lakh/{key}")] for key in midi_keys] == [
        hashlib.md5(objects[key]).hexdigest() for key in midi_keys]
    assert manifest.loc[store.source("lakh/midi/sub/bad $(name).MID"), "reason"] == "not_midi"
    copy, original = store.source("lakh/midi/sub/copy of 001.mid"), store.source("lakh/midi/001.mid")
    assert manifest.loc[copy, "duplicate_of"] == original
    local = convert_batch({"path": [str(p) for p in [*originals, local_input]]}, MIDI2ABC_FLAGS, 10.0, Limits())
    assert sorted(pd.read_parquet(out / "abc").md5) == sorted(local["tune_md5"])

    assert "nothing to do" in run([*command, "--verify"], store.env, timeout=120).stdout  # the same bytes again
    store.put("lakh/midi/sub/bad $(name).MID", b"other bytes")  # a changed object: by its size and time
    refused = run(command, store.env, timeout=120, code=2).stderr
    assert f"input contents ({store.source('lakh/midi/sub/bad $(name).MID')} changed since" in refused
    assert "Traceback" not in refused


def test_listed_objects_of_one_bucket_are_read_with_one_filesystem(store, tmp_path, monkeypatch):
    """A list of URIs (files and folders) becomes one Ray dataset per bucket, not one per file (Lakh lists 176k
    files); a missing URI stops it before any work, named."""
    names = ("001.mid", "a b$(c).mid", "sub/002.MID")
    for name in names:
        store.put(f"lakh/listed/{name}", b"MThd")
    quoted = {name: name.replace(" ", "%20") for name in names}  # a space is no URI character
    listed = tmp_path / "objects.txt"
    lines = [store.uri(f"lakh/listed/{quoted[name]}") for name in names[:2]]
    lines += ["# a comment", store.uri("lakh/listed/sub/")]  # a folder
    listed.write_text("".join(f"{line}\n" for line in lines))
    store.point_here(monkeypatch)
    items = resolve_inputs([str(listed)])
    assert [item["location"] for item in items] == [store.source(f"lakh/listed/{name}") for name in names]
    assert {item["filesystem"] for item in items} == {store.uri("lakh")}
    assert {item["stamp"].split()[0] for item in items} == {"4"}  # the size, from the lookup or listing

    listed.write_text("".join(f"{store.uri(f'lakh/listed/{name}')}\n" for name in ("gone.mid", "001.mid", "x.mid")))
    with pytest.raises(ValueError, match=r"--input .*lakh/listed/gone\.mid: not found \(and 1 more"):
        resolve_inputs([str(listed)])


def test_a_results_subfolder_in_the_bucket_is_fetched_whole(store, tmp_path, monkeypatch):
    """What analysis does with best/samples of remote results: a folder that exists only as the objects under
    it (as Tune and `aws s3 sync` upload them: no folder marker objects) is downloaded with its tree; a missing
    one is None."""
    files = {"best/samples/t0.8_0.abc": b"X:1\nK:C\nCDEF|\n", "best/samples/midi/t0.8_0.mid": b"MThd"}
    for name, body in files.items():
        store.put(f"study/fetch/{name}", body)
    store.point_here(monkeypatch)
    fetched = local_folder(store.uri("study/fetch"), "best/samples", tmp_path)
    assert {p.relative_to(fetched).as_posix(): p.read_bytes() for p in fetched.rglob("*") if p.is_file()} == {
        name.removeprefix("best/samples/"): body for name, body in files.items()}
    assert local_folder(store.uri("study/fetch"), "best/nothing", tmp_path) is None


def test_a_sweep_on_bucket_data_and_storage_is_analysed_from_the_bucket(store, sweep_data, tmp_path):
    """The trial fetches its shards into the node cache, Tune writes results and checkpoints to the bucket,
    and analysis/run.py reads them back and publishes its report beside them."""
    for path in [sweep_data / "meta.json", *sorted((sweep_data / "tokens").iterdir())]:
        store.put(f"study/data/{path.relative_to(sweep_data).as_posix()}", path.read_bytes())
    env = {**store.env, "MUSIC_SCALING_CACHE": str(tmp_path / "cache")}

    run(["sweep/run.py", "--data", store.uri("study/data"), "--preset", "tiny", "--set", "archs=[gpt]",
         "--storage", store.uri("study/results"), "--name", "in-bucket", "--quiet"], env)
    written = store.files("study/results/in-bucket")
    assert "study/results/in-bucket/sweep.json" in written
    results = [path for path in written if path.endswith("/result.json")]
    assert len(results) == 1 and any("/checkpoint_" in path for path in written)
    [cached] = (tmp_path / "cache").iterdir()
    assert (cached / "tokens" / "train.bin").read_bytes() == (sweep_data / "tokens" / "train.bin").read_bytes()

    run(["analysis/run.py", store.uri("study/results/in-bucket")], env)
    published = set(store.files("study/results/in-bucket/analysis"))
    assert {"study/results/in-bucket/analysis/report.md", "study/results/in-bucket/analysis/trials.csv"} <= published
    trials = pd.read_csv(io.BytesIO(store.read("study/results/in-bucket/analysis/trials.csv")))
    last = json.loads(store.read(results[0]).decode().splitlines()[-1])
    assert list(trials.status) == ["ok"] and trials.val_loss[0] == pytest.approx(last["val_loss"])
    assert not Path(REPO / "results" / "in-bucket").exists(), "nothing of a bucket's run lands in the working folder"

    run(["sweep/run.py", "best", "--data", store.uri("study/data"), "--from", store.uri("study/results/in-bucket"),
         "--time-budget", "5s"], env)
    best = json.loads(store.read("study/results/in-bucket/best/metrics.json"))
    assert best["model"] == f"gpt-{last['size']}" and best["steps"] > 0
    assert "study/results/in-bucket/best/checkpoint.pt" in store.files("study/results/in-bucket/best")
    assert len(store.files("study/results/in-bucket/best/samples")) >= len(best["samples"])
    assert not Path(REPO / "results" / "in-bucket").exists()
