"""How long a list file of s3:// URIs takes to resolve, against a plain loop that looks each URI up in turn.

A local S3 server (moto's, in a process of its own) sits behind a proxy that holds every request for --delay
seconds, as a far-away object store does. Both sides resolve the same --files URIs, each naming an object:
the plain loop with one get_file_info call (one round trip) per URI, preprocessing's resolve_inputs with its
lookups in threads. moto handles one request at a time, in Python, so with many lookups in flight the server
itself is the limit here, not the network as it is on S3.

    python benchmarks/bench_remote_inputs.py                      # 1,000 URIs, 20 ms a request
    python benchmarks/bench_remote_inputs.py --files 5000 --delay 0.05
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pyarrow import fs as pafs

from preprocessing.inputs import resolve_inputs


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_delaying_proxy(target_port, delay):
    """A TCP proxy on a free port, in a thread, that forwards each chunk towards the server delay seconds late."""
    port, loop = free_port(), asyncio.new_event_loop()

    async def forward(reader, writer, wait):
        try:
            while data := await reader.read(1 << 16):
                await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def connect(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(forward(client_reader, server_writer, delay), forward(server_reader, client_writer, 0),
                             return_exceptions=True)

    async def serve():
        server = await asyncio.start_server(connect, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True).start()
    return port


def wait_for_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"no server on port {port} after {timeout} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds each request is held on its way")
    args = parser.parse_args()
    server_port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(server_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(server_port)
        proxy_port = start_delaying_proxy(server_port, args.delay)
        os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy_port}", "AWS_ACCESS_KEY_ID": "test",
                           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                           "AWS_EC2_METADATA_DISABLED": "true"})
        direct = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1", scheme="http",
                                   endpoint_override=f"127.0.0.1:{server_port}", allow_bucket_creation=True)
        direct.create_dir("lakh")
        keys = [f"lakh/midi/{i % 100:02d}/{i:06d}.mid" for i in range(args.files)]
        for key in keys:
            with direct.open_output_stream(key) as stream:
                stream.write(b"MThd")
        measure(keys, args.delay)
    finally:
        server.kill()


def measure(keys, delay):
    remote = pafs.FileSystem.from_uri("s3://lakh")[0]
    started = time.perf_counter()
    found = [remote.get_file_info(key).type for key in keys]
    loop = (time.perf_counter() - started) / len(keys)
    assert found == [pafs.FileType.File] * len(keys)
    with tempfile.TemporaryDirectory(prefix="bench-remote-inputs-") as scratch:
        listed = Path(scratch) / "objects.txt"
        listed.write_text("".join(f"s3://{key}\n" for key in keys))
        started = time.perf_counter()
        items = resolve_inputs([str(listed)])
        resolved = (time.perf_counter() - started) / len(keys)
    assert len(items) == len(keys)
    print(f"{len(keys)} listed URIs, each request held {delay * 1e3:.0f} ms: plain loop {loop * 1e3:.2f} ms a URI, "
          f"resolve_inputs {resolved * 1e3:.2f} ms a URI: {loop / resolved:.1f}x faster; at 176,000 URIs "
          f"{176_000 * loop / 60:.0f} against {176_000 * resolved / 60:.1f} minutes")


if __name__ == "__main__":
    main()
