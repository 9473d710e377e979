"""Files/s of the preprocessing pipeline at 1 and 2 CPUs against a plain one-process midi2abc loop.

POP909 is replicated by hard links (symlinks where links fail) in a temporary folder to --files files.
Ray start-up (ray.init and a first run over a few files, which starts the workers) is timed apart; peak
memory is the largest summed RSS of this process and all its children (the Ray processes of a local Ray),
sampled every 0.5 s.

    python benchmarks/bench_preprocessing.py                      # 10,000 files: baseline, 1 and 2 CPUs
    python benchmarks/bench_preprocessing.py --files 176000 --cpus 2
"""

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
import ray

from preprocessing.abc_tools import MIDI2ABC_FLAGS, midi2abc_path
from preprocessing.pipeline import prepare

MIDI_DIR = Path(os.environ.get("MUSIC_SCALING_MIDI", Path(__file__).resolve().parents[2] / "shared/data/midi"))


def replicate(source_dir, count, folder):
    originals = sorted(p for p in source_dir.iterdir() if p.suffix.lower() == ".mid")
    paths = []
    for i in range(count):
        original = originals[i % len(originals)]
        copy = folder / f"r{i // len(originals):04d}_{original.name}"
        try:
            os.link(original, copy)
        except OSError:
            copy.symlink_to(original)
        paths.append(copy)
    return paths


def baseline_files_per_s(paths):
    """The bare conversion: one process, midi2abc on each file, output discarded. No timeout: with one,
    subprocess.run polls the exit in sleeps (~0.8 ms a call, measured), a cost the pipeline avoids."""
    started = time.perf_counter()
    for path in paths:
        subprocess.run([str(midi2abc_path()), "-f", str(path), *MIDI2ABC_FLAGS], capture_output=True)
    return len(paths) / (time.perf_counter() - started)


class PeakMemory:
    """Peak summed RSS (bytes) of this process and its descendants while in the with-block."""

    def __enter__(self):
        self.peak, self.running = 0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        me = psutil.Process()
        while self.running:
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.5)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def pipeline_run(folder, cpus, out, warm_up_paths):
    """Start-up is ray.init plus a first tiny run, which starts the workers and their imports."""
    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    prepare([str(p) for p in warm_up_paths], out.with_name(out.name + "-warm-up"), quiet=True, split=(1, 0, 0))
    startup = time.perf_counter() - started
    try:
        with PeakMemory() as memory:
            started = time.perf_counter()
            summary = prepare([str(folder)], out, quiet=True)
            wall = time.perf_counter() - started
    finally:
        ray.shutdown()
    return {"startup": startup, "wall": wall, "convert": summary["stage_seconds"]["convert"],
            "tokens": summary["stage_seconds"]["tokens"], "peak_gib": memory.peak / 2**30, "summary": summary}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--cpus", default="1,2", help="comma-separated CPU counts for the pipeline runs")
    parser.add_argument("--baseline-files", type=int, default=2000, help="files in each plain-loop measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preprocessing-") as scratch:
        folder = Path(scratch) / "midi"
        folder.mkdir()
        paths = replicate(MIDI_DIR / "pop909", args.files, folder)
        baseline_paths = paths[: max(1, args.baseline_files)]
        print(f"{len(paths)} files (pop909 replicated); the plain midi2abc loop (1 process, {len(baseline_paths)} "
              f"files) is measured right before and after each pipeline run, as this machine's speed drifts")
        rates = {}
        for cpus in [int(c) for c in args.cpus.split(",")]:
            before = baseline_files_per_s(baseline_paths)
            result = pipeline_run(folder, cpus, Path(scratch) / f"out{cpus}", paths[:4 * cpus])
            after = baseline_files_per_s(baseline_paths)
            baseline = (before + after) / 2
            rates[cpus] = len(paths) / result["wall"]
            s = result["summary"]
            print(f"pipeline {cpus} CPU: Ray start-up + worker warm-up {result['startup']:.1f} s (apart); "
                  f"prepare {result['wall']:.1f} s = {rates[cpus]:.1f} files/s (convert stage {result['convert']:.1f} s = "
                  f"{len(paths) / result['convert']:.1f} files/s, dedup+tokens {result['tokens']:.1f} s); "
                  f"peak RSS {result['peak_gib']:.2f} GiB; ok {s['ok']} dup {s['duplicate']} rej {s['rejected']}")
            convert_ratio = len(paths) / result["convert"] / cpus / baseline
            print(f"  plain loop before/after: {before:.1f} / {after:.1f} files/s; per-core ratio pipeline/loop: "
                  f"{rates[cpus] / cpus / baseline:.2f} (convert stage {convert_ratio:.2f})")
        if 1 in rates and 2 in rates:
            print(f"2 CPUs / 1 CPU: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
