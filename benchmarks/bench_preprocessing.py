"""Files/s of the preprocessing pipeline at 1 and 2 CPUs against a plain one-process midi2abc loop.

POP909 is replicated by hard links (symlinks where links fail) in a temporary folder to --files files.
Ray start-up (ray.init and a first run over a few files, which starts the workers) is timed apart; peak
memory is the largest summed RSS of this process and all its children (the Ray processes of a local Ray),
sampled every 0.5 s; their CPU time is summed too, a cost figure that leaves out idle cores. The machine's
idle core-seconds during the run show how much of the cores the pipeline left unused. On a shared VM both
wall and CPU time drift by tens of percent within minutes, so --repeats N runs N rounds (every CPU count
in a fresh Ray each round, the plain loop around each run) and prints the medians.

    python benchmarks/bench_preprocessing.py                      # 10,000 files: baseline, 1 and 2 CPUs
    python benchmarks/bench_preprocessing.py --repeats 3           # the same, three rounds, medians
    python benchmarks/bench_preprocessing.py --files 176000 --cpus 2
    python benchmarks/bench_preprocessing.py --files 176000 --cpus 2 --distinct   # every copy a tune of its own

Plain copies are 600 distinct tunes however many files there are, so dedup leaves the token stage and the
driver almost nothing. Real Lakh is mostly distinct songs: --distinct gives every copy round its own tempo,
which midi2abc writes as the tune's Q: line, so nearly every file is a distinct tune to keep and tokenize.
"""

import argparse
import os
import statistics
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


def replicate(source_dir, count, folder, distinct=False):
    """count copies of source_dir's MIDI files, round after round: hard links (symlinks where links fail), or
    with distinct, files whose first tempo event is 40 + the round's number in beats per minute (round 0: the
    originals' own tempo)."""
    originals = sorted(p for p in source_dir.iterdir() if p.suffix.lower() == ".mid")
    paths = []
    for i in range(count):
        original, round_number = originals[i % len(originals)], i // len(originals)
        copy = folder / f"r{round_number:04d}_{original.name}"
        if distinct and round_number:
            copy.write_bytes(with_tempo(original.read_bytes(), 40 + round_number))
        else:
            try:
                os.link(original, copy)
            except OSError:
                copy.symlink_to(original)
        paths.append(copy)
    return paths


def with_tempo(midi, bpm):
    """The MIDI bytes with their first set-tempo event (FF 51 03 + microseconds per beat) at bpm."""
    at = midi.find(b"\xff\x51\x03")
    if at < 0:
        return midi
    return midi[:at + 3] + round(60e6 / bpm).to_bytes(3, "big") + midi[at + 6:]


def baseline_run(paths):
    """The bare conversion: one process, midi2abc on each file, output discarded: (files/s, CPU seconds a
    file, its own and midi2abc's). No timeout: with one, subprocess.run polls the exit in sleeps (~0.8 ms
    a call, measured), a cost the pipeline avoids."""
    cpu_before, started = sum(os.times()[:4]), time.perf_counter()
    for path in paths:
        subprocess.run([str(midi2abc_path()), "-f", str(path), *MIDI2ABC_FLAGS], capture_output=True)
    wall, cpu = time.perf_counter() - started, sum(os.times()[:4]) - cpu_before
    return len(paths) / wall, cpu / len(paths)


class ProcessTree:
    """Peak summed RSS (bytes) and CPU seconds (own and reaped children's, less the sampling thread's) of
    this process and its descendants (a local Ray's processes) while in the with-block, sampled every 0.5 s
    (~5 ms of CPU a sample with a local Ray's dozen processes). A process that starts or ends between two
    samples loses up to 0.5 s of its CPU time."""

    def __enter__(self):
        self.peak, self.first_cpu, self.last_cpu, self.running = 0, {}, {}, True
        self.sample()
        self.thread = threading.Thread(target=self.keep_sampling, daemon=True)
        self.thread.start()
        return self

    def keep_sampling(self):
        while self.running:
            time.sleep(0.5)
            self.sample()
        self.sampler_cpu = time.thread_time()  # this thread's own CPU, not the pipeline's

    def sample(self):
        me, total = psutil.Process(), 0
        for process in [me, *me.children(recursive=True)]:
            try:
                with process.oneshot():
                    total += process.memory_info().rss
                    cpu = sum(process.cpu_times()[:4])
            except psutil.Error:
                continue
            self.first_cpu.setdefault(process.pid, cpu)
            self.last_cpu[process.pid] = cpu
        self.peak = max(self.peak, total)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.sample()

    @property
    def cpu_seconds(self):
        return sum(self.last_cpu[pid] - self.first_cpu[pid] for pid in self.last_cpu) - self.sampler_cpu


def pipeline_run(folder, cpus, out, warm_up_paths):
    """Start-up is ray.init plus a first tiny run, which starts the workers and their imports."""
    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        prepare([str(p) for p in warm_up_paths], out.with_name(out.name + "-warm-up"), quiet=True)
        startup = time.perf_counter() - started
        with ProcessTree() as tree:
            started, idle_before = time.perf_counter(), idle_core_seconds()
            summary = prepare([str(folder)], out, quiet=True)
            wall, idle = time.perf_counter() - started, idle_core_seconds() - idle_before
    finally:
        ray.shutdown()
    return {"startup": startup, "wall": wall, "idle": idle, "convert": summary["stage_seconds"]["convert"],
            "near_twins": summary["stage_seconds"]["near_twins"], "tokens": summary["stage_seconds"]["tokens"],
            "peak_gib": tree.peak / 2**30, "cpu_seconds": tree.cpu_seconds, "summary": summary}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--cpus", default="1,2", help="comma-separated CPU counts for the pipeline runs")
    parser.add_argument("--baseline-files", type=int, default=2000, help="files in each plain-loop measurement")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the CPU counts; medians are printed")
    parser.add_argument("--distinct", action="store_true", help="make nearly every copy a distinct tune (see above)")
    args = parser.parse_args()
    cpu_counts = [int(c) for c in args.cpus.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-preprocessing-") as scratch:
        folder = Path(scratch) / "midi"
        folder.mkdir()
        paths = replicate(MIDI_DIR / "pop909", args.files, folder, args.distinct)
        baseline_paths = paths[: max(1, args.baseline_files)]
        copies = "each round at its own tempo" if args.distinct else "linked"
        print(f"{len(paths)} files (pop909 replicated, {copies}); the plain midi2abc loop (1 process, "
              f"{len(baseline_paths)} files) is measured right before and after each pipeline run, as this "
              f"machine's speed drifts")
        rounds = []
        for repeat in range(args.repeats):
            rounds.append({cpus: measure(folder, paths, baseline_paths, cpus, Path(scratch) / f"out{cpus}-{repeat}")
                           for cpus in cpu_counts})
            if 1 in cpu_counts and 2 in cpu_counts:
                print(f"2 CPUs / 1 CPU: {two_over_one(rounds[-1]):.2f}x")
        if args.repeats > 1:
            print_medians(rounds, cpu_counts)


def measure(folder, paths, baseline_paths, cpus, out):
    """One pipeline run between two plain-loop runs; prints it and returns its rates and ratios."""
    before, cpu_before = baseline_run(baseline_paths)
    result = pipeline_run(folder, cpus, out, paths[:4 * cpus])
    after, cpu_after = baseline_run(baseline_paths)
    baseline, loop_cpu = (before + after) / 2, (cpu_before + cpu_after) / 2
    pipeline_cpu = result["cpu_seconds"] / len(paths)
    rate = len(paths) / result["wall"]
    s = result["summary"]
    print(f"pipeline {cpus} CPU: Ray start-up + worker warm-up {result['startup']:.1f} s (apart); "
          f"prepare {result['wall']:.1f} s = {rate:.1f} files/s (convert stage {result['convert']:.1f} s = "
          f"{len(paths) / result['convert']:.1f} files/s, near-twins {result['near_twins']:.1f} s, "
          f"tokens {result['tokens']:.1f} s); "
          f"peak RSS {result['peak_gib']:.2f} GiB; ok {s['ok']} dup {s['duplicate']} rej {s['rejected']}")
    measured = {"rate": rate, "wall_ratio": rate / cpus / baseline, "cpu_ratio": loop_cpu / pipeline_cpu}
    convert_ratio = len(paths) / result["convert"] / cpus / baseline
    print(f"  plain loop before/after: {before:.1f} / {after:.1f} files/s; per-core ratio pipeline/loop: "
          f"{measured['wall_ratio']:.2f} (convert stage {convert_ratio:.2f}); idle cores during the run: "
          f"{result['idle']:.1f} of {os.cpu_count() * result['wall']:.0f} core-seconds")
    print(f"  CPU a file, all processes: pipeline {pipeline_cpu * 1e3:.2f} ms, plain loop "
          f"{loop_cpu * 1e3:.2f} ms: per-core ratio by CPU time {measured['cpu_ratio']:.2f}")
    return measured


def idle_core_seconds():
    """Seconds that this machine's cores spent idle since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return int(fields[4]) / os.sysconf("SC_CLK_TCK")


def print_medians(rounds, cpu_counts):
    print(f"medians over {len(rounds)} rounds (min-max):")
    for cpus in cpu_counts:
        figures = {key: [r[cpus][key] for r in rounds] for key in ("rate", "wall_ratio", "cpu_ratio")}
        print(f"  {cpus} CPU: " + ", ".join(f"{key} {median_range(values)}" for key, values in figures.items()))
    if 1 in cpu_counts and 2 in cpu_counts:
        print(f"  2 CPUs / 1 CPU: {median_range([two_over_one(r) for r in rounds])}")


def two_over_one(measured):
    return measured[2]["rate"] / measured[1]["rate"]


def median_range(values):
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
