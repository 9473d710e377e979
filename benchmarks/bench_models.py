"""Training speed per model size: our TrainStep against a minimal reference loop, same shapes, same run.

    python benchmarks/bench_models.py --device cpu --threads 1            # the five CPU demo sizes
    python benchmarks/bench_models.py --device cpu --sizes tiny,small --steps 3
    python benchmarks/bench_models.py --device cuda --compile             # the five study sizes, bf16
    python benchmarks/bench_models.py --device cpu --sizes cpu-tiny --compile --dtype bf16 --steps 2   # that path on CPU

The reference is the plainest correct loop: fp32 forward, backward, torch.optim.AdamW with its default
implementation, zero_grad; no clipping, no autocast. On CPU both run fp32, so the ratio is TrainStep's
overhead (LR setting, gradient clipping); on cuda it is what bf16 autocast + flash attention + fused
AdamW (+ compile for the GPT) buy over fp32. The two loops alternate for --rounds rounds on the same
batches and each keeps its best round, so a neighbour's burst of CPU use hits both alike. Peak memory is
each loop's own (cuda). --json writes the rows, after each model, for benchmarks/gpu_check.py.
"""

import argparse
import copy
import json
import time

import torch

from models import ARCHS, DEMO_SIZES, SIZES, TrainStep, build_model, estimate_mfu

LR, BETAS, WEIGHT_DECAY, GRAD_CLIP = 3e-4, (0.9, 0.95), 0.1, 1.0
DTYPES = {"bf16": torch.bfloat16, "fp32": None}  # our step's autocast dtype


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_step(step, batches, device):
    """(wall, process CPU) seconds per step and the peak accelerator MB of these steps (None on CPU); on a
    shared CPU the second shows what the step itself costs."""
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for x, y in batches:
        step(x, y)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return (time.perf_counter() - wall) / len(batches), (time.process_time() - cpu) / len(batches), peak


def reference_step(model, device):
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)

    def step(x, y):
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def ours_step(model, device, compile, dtype):
    train_step = TrainStep(model, device, LR, BETAS, WEIGHT_DECAY, GRAD_CLIP, compile=compile,
                           autocast_dtype=DTYPES[dtype])
    return lambda x, y: train_step(x, y, LR)


def random_batches(n, batch_size, block_size, vocab_size, device):
    tokens = torch.randint(vocab_size, (n, batch_size, block_size + 1), generator=torch.Generator().manual_seed(0))
    return [(t[:, :-1].to(device), t[:, 1:].to(device)) for t in tokens]


def bench_one(arch, size, args, device):
    torch.manual_seed(0)
    model = build_model(arch, size, args.vocab_size)
    block = model.config.block_size
    batches = random_batches(args.steps, args.batch_size, block, args.vocab_size, device)
    loops = {"ref": reference_step(copy.deepcopy(model), device),
             "ours": ours_step(model, device, args.compile, args.dtype)}
    compile_s = {}
    for name, step in loops.items():  # warm-up: allocator, cuDNN plans, compilation
        began = time.perf_counter()
        for x, y in batches[:args.warmup]:
            step(x, y)
        sync(device)
        compile_s[name] = time.perf_counter() - began
    rounds = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, step in loops.items():
            rounds[name].append(seconds_per_step(step, batches, device))
    best = {name: min(timing[0] for timing in timings) for name, timings in rounds.items()}
    tokens_per_step = args.batch_size * block
    rate = {name: tokens_per_step / seconds for name, seconds in best.items()}
    peak = max(timing[2] for timing in rounds["ours"]) if device.type == "cuda" else None
    return dict(arch=arch, size=size, params=model.num_params(), block=block, dtype=args.dtype,
                compiled=args.compile and model.compilable, ref=rate["ref"], ours=rate["ours"],
                ratio=rate["ours"] / rate["ref"], step_ms=best["ours"] * 1e3,
                cpu_ms=min(timing[1] for timing in rounds["ours"]) * 1e3, warmup_s=compile_s["ours"],
                mfu_ref=estimate_mfu(rate["ref"] * model.flops_per_token(), device),
                mfu=estimate_mfu(rate["ours"] * model.flops_per_token(), device), peak_mb=peak)


def describe(device):
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"device={device} ({name}), {torch.get_num_threads()} intra-op threads, torch {torch.__version__}"


def print_table(rows, args, device):
    percent = lambda v: "-" if v is None else f"{v:.1%}"
    print(f"\n{describe(device)}; ours in {args.dtype}{' with torch.compile (GPT)' if args.compile else ''}; "
          f"batch {args.batch_size}, vocab {args.vocab_size}, {args.steps} steps x {args.rounds} rounds, best kept")
    print(f"{'arch':5} {'size':11} {'params':>11} {'block':>5} {'ref tok/s':>11} {'ours tok/s':>11} "
          f"{'ratio':>6} {'step ms':>8} {'cpu ms':>7} {'MFU ref':>7} {'MFU':>6} {'peak MB':>8} {'warm-up s':>9}")
    for r in rows:
        peak = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        print(f"{r['arch']:5} {r['size']:11} {r['params']:>11,} {r['block']:>5} {r['ref']:>11,.0f} "
              f"{r['ours']:>11,.0f} {r['ratio']:>6.2f} {r['step_ms']:>8.1f} {r['cpu_ms']:>7.1f} {percent(r['mfu_ref']):>7} "
              f"{percent(r['mfu']):>6} {peak:>8} {r['warmup_s']:>9.1f}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default=None, help="comma-separated; default: study sizes on cuda, demo on cpu")
    parser.add_argument("--arch", default="gpt,lstm", help="comma-separated subset of gpt,lstm")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round and loop")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best is kept")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile happens here)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 on cuda, 16 on cpu")
    parser.add_argument("--vocab-size", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our GPT step (on any device)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="our step's autocast: default bf16 on cuda, "
                                                                "fp32 on cpu")
    parser.add_argument("--json", help="write the rows to this file (after each model)")
    args = parser.parse_args()
    archs = args.arch.split(",")
    for arch in archs:
        if arch not in ARCHS:
            parser.error(f"--arch: {arch!r} is not one of {ARCHS}")
    return args, archs


def main():
    args, archs = parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.sizes.split(",") if args.sizes else list(SIZES if device.type == "cuda" else DEMO_SIZES)
    args.batch_size = args.batch_size or (32 if device.type == "cuda" else 16)
    args.dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    if device.type == "cuda":
        # Lets the fp32 reference use TF32 tensor cores too, so the ratio credits only our own choices.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    rows = []
    for arch in archs:
        for size in sizes:
            rows.append(bench_one(arch, size, args, device))
            r = rows[-1]
            print(f"{arch} {size}: ref {r['ref']:,.0f} tok/s, ours {r['ours']:,.0f} tok/s", flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"device": describe(device), "batch_size": args.batch_size, "rows": rows}, f, indent=1)
    print_table(rows, args, device)


if __name__ == "__main__":
    main()
