"""The cluster recipe on object storage, against a real S3 server on localhost (moto's): MIDI files read from
s3://, a sweep whose data and results live on s3://, and the analysis of those results read back from it.

The commands run as a user runs them, in subprocesses that start their own local Ray, so that every Ray
worker gets the environment pointing AWS clients (pyarrow's included) at the local server."""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from conftest import REPO
from preprocessing.abc_clean import Limits
from preprocessing.abc_tools import MIDI2ABC_FLAGS
from preprocessing.convert import convert_batch, read_local_files


@pytest.fixture(scope="module")
def s3():
    """(the environment of a process that uses the server, a boto3 client of it)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    yield {**os.environ, **env}, boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                                               aws_access_key_id="test", aws_secret_access_key="test")
    server.stop()


def run(command, env, timeout=300):
    done = subprocess.run([sys.executable, *command], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def keys(client, bucket, prefix):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def read_object(client, bucket, key):
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_an_s3_folder_is_read_through_ray_like_local_files(s3, midi_dir, tmp_path):
    """Each MIDI object gets one manifest row with its URI and the md5 of its bytes, and converts to the same
    tune as its local original."""
    env, client = s3
    client.create_bucket(Bucket="lakh")
    originals = sorted((midi_dir / "pop909").glob("*.mid"))[:3]
    objects = {f"midi/{p.name}": p.read_bytes() for p in originals}
    objects["midi/sub/copy of 001.mid"] = originals[0].read_bytes()
    objects["midi/sub/bad $(name).MID"] = b"not a MIDI file"
    objects["midi/readme.txt"] = b"not an input"
    for key, body in objects.items():
        client.put_object(Bucket="lakh", Key=key, Body=body)

    out = tmp_path / "data"
    run(["preprocessing/run.py", "--input", "s3://lakh/midi", "--out", str(out), "--num-cpus", "2",
         "--split", "1,0,0", "--quiet"], env)
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("source")
    midi_keys = sorted(key for key in objects if key.lower().endswith(".mid"))
    assert sorted(manifest.index) == [f"s3://lakh/{key}" for key in midi_keys]
    assert [manifest.md5[f"s3://lakh/{key}"] for key in midi_keys] == [
        hashlib.md5(objects[key]).hexdigest() for key in midi_keys]
    assert manifest.loc["s3://lakh/midi/sub/bad $(name).MID", "reason"] == "not_midi"
    assert manifest.loc["s3://lakh/midi/sub/copy of 001.mid", "duplicate_of"] == "s3://lakh/midi/001.mid"
    local = convert_batch(read_local_files({"path": [str(p) for p in originals]}), MIDI2ABC_FLAGS, 10.0, Limits())
    assert sorted(pd.read_parquet(out / "abc").md5) == sorted(local["tune_md5"])


def test_a_sweep_on_s3_data_and_storage_is_analysed_from_s3(s3, sweep_data, tmp_path):
    """The trial fetches its shards into the node cache, Tune writes results and checkpoints to the bucket,
    and analysis/run.py reads them back and publishes its report beside them."""
    env, client = s3
    client.create_bucket(Bucket="study")
    for path in [sweep_data / "meta.json", *sorted((sweep_data / "tokens").iterdir())]:
        client.put_object(Bucket="study", Key=f"data/{path.relative_to(sweep_data).as_posix()}", Body=path.read_bytes())
    env = {**env, "MUSIC_SCALING_CACHE": str(tmp_path / "cache")}

    run(["sweep/run.py", "--data", "s3://study/data", "--preset", "tiny", "--set", "archs=[gpt]",
         "--storage", "s3://study/results", "--name", "on-s3", "--quiet"], env)
    written = keys(client, "study", "results/on-s3/")
    assert "results/on-s3/sweep.json" in written
    results = [key for key in written if key.endswith("/result.json")]
    assert len(results) == 1 and any("/checkpoint_" in key for key in written)
    [cached] = (tmp_path / "cache").iterdir()
    assert (cached / "tokens" / "train.bin").read_bytes() == (sweep_data / "tokens" / "train.bin").read_bytes()

    run(["analysis/run.py", "s3://study/results/on-s3"], env)
    published = keys(client, "study", "results/on-s3/analysis/")
    assert {"results/on-s3/analysis/report.md", "results/on-s3/analysis/trials.csv"} <= set(published)
    trials = pd.read_csv(io.BytesIO(read_object(client, "study", "results/on-s3/analysis/trials.csv")))
    last = json.loads(read_object(client, "study", results[0]).decode().splitlines()[-1])
    assert list(trials.status) == ["ok"] and trials.val_loss[0] == pytest.approx(last["val_loss"])
    assert not Path(REPO / "results" / "on-s3").exists(), "nothing of an s3:// run lands in the working folder"
