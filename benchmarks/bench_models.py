"""Training speed per model size: our TrainStep against a minimal reference loop, same run.

    python benchmarks/bench_models.py --device cpu --sizes cpu-tiny,cpu-small,cpu-medium,cpu-large,cpu-xl
    python benchmarks/bench_models.py --device cuda --sizes tiny,small,medium,large,xl --compile

The reference is the plainest correct loop: fp32 forward, backward, torch.optim.AdamW (default
implementation), zero_grad. On CPU both run fp32, so the ratio shows TrainStep's overhead; on cuda
it shows what bf16 autocast + fused AdamW (+ compile) buy.
"""

import argparse
import copy
import time

import torch

from models import ARCHS, DEMO_SIZES, SIZES, TrainStep, build_model, estimate_mfu

LR, BETAS, WEIGHT_DECAY, GRAD_CLIP = 3e-4, (0.9, 0.95), 0.1, 1.0


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tokens_per_s(step, batches, warmup, device):
    """Run warmup steps untimed, then time the rest; tokens per second over the timed steps."""
    for x, y in batches[:warmup]:
        step(x, y)
    sync(device)
    start = time.perf_counter()
    for x, y in batches[warmup:]:
        step(x, y)
    sync(device)
    timed = batches[warmup:]
    return sum(x.numel() for x, _ in timed) / (time.perf_counter() - start)


def reference_step(model, device):
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)

    def step(x, y):
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss
    return step


def ours_step(model, device, compile):
    train_step = TrainStep(model, device, LR, BETAS, WEIGHT_DECAY, GRAD_CLIP, compile=compile)
    return lambda x, y: train_step(x, y, LR)


def bench_one(arch, size, args, device):
    torch.manual_seed(0)
    model = build_model(arch, size, args.vocab_size)
    block = model.config.block_size
    batches = [tuple(torch.randint(args.vocab_size, (2, args.batch_size, block), device=device))
               for _ in range(args.warmup + args.steps)]
    ref = tokens_per_s(reference_step(copy.deepcopy(model), device), batches, args.warmup, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ours = tokens_per_s(ours_step(model, device, args.compile), batches, args.warmup, device)
    peak_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    mfu = estimate_mfu(ours * model.flops_per_token(), device)
    return dict(arch=arch, size=size, params=model.num_params(), block=block, ref=ref, ours=ours,
                ratio=ours / ref, mfu=mfu, peak_mb=peak_mb)


def print_table(rows, device):
    print(f"\ndevice={device}  ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"{torch.get_num_threads()} threads)")
    print(f"{'arch':5} {'size':11} {'params':>11} {'block':>5} {'ref tok/s':>11} {'ours tok/s':>11} "
          f"{'ratio':>6} {'MFU':>6} {'peak MB':>8}")
    for r in rows:
        mfu = "-" if r["mfu"] is None else f"{r['mfu']:.1%}"
        print(f"{r['arch']:5} {r['size']:11} {r['params']:>11,} {r['block']:>5} {r['ref']:>11,.0f} "
              f"{r['ours']:>11,.0f} {r['ratio']:>6.2f} {mfu:>6} {r['peak_mb']:>8.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default=None, help="comma-separated; default: study sizes on cuda, demo on cpu")
    parser.add_argument("--arch", default="gpt,lstm", help="comma-separated subset of gpt,lstm")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile happens here)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 on cuda, 16 on cpu")
    parser.add_argument("--vocab-size", type=int, default=1734)
    parser.add_argument("--compile", action="store_true", help="torch.compile our step (not the reference)")
    args = parser.parse_args()
    device = torch.device(args.device)
    sizes = args.sizes.split(",") if args.sizes else list(SIZES if device.type == "cuda" else DEMO_SIZES)
    args.batch_size = args.batch_size or (32 if device.type == "cuda" else 16)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    rows = []
    for arch in args.arch.split(","):
        if arch not in ARCHS:
            parser.error(f"--arch: {arch!r} is not one of {ARCHS}")
        for size in sizes:
            rows.append(bench_one(arch, size, args, device))
            r = rows[-1]
            print(f"{arch} {size}: ref {r['ref']:,.0f} tok/s, ours {r['ours']:,.0f} tok/s", flush=True)
    print_table(rows, device)


if __name__ == "__main__":
    main()
