"""Print the size table of both families at a vocabulary size.

    python -m models --vocab-size 1734

Models are built on the meta device, so even XL costs no memory or initialisation time. The
study's reported GPT totals (1,734-token vocabulary, untied head) are printed beside ours, and their
ratio only at --vocab-size 1734, the one vocabulary where they compare like with like.
"""

import argparse

import torch

from models.sizes import ARCHS, DEMO_SIZES, SIZES, STUDY_PARAMS, STUDY_VOCAB_SIZE, build_model


def shape_of(model):
    c = model.config
    if model.arch == "gpt":
        return f"L{c.n_layer} H{c.n_head} d{c.n_embd} T{c.block_size}"
    return f"L{c.n_layer} h{c.n_hidden} T{c.block_size}"


def size_rows(vocab_size):
    rows = []
    with torch.device("meta"):
        for arch in ARCHS:
            for size in SIZES + DEMO_SIZES:
                model = build_model(arch, size, vocab_size)
                rows.append(dict(arch=arch, size=size, shape=shape_of(model), params=model.num_params(),
                                 nonembed=model.num_params(non_embedding=True),
                                 flops=model.flops_per_token(),
                                 study=STUDY_PARAMS.get(size) if arch == "gpt" else None))
    return rows


def print_table(rows, vocab_size):
    print(f"vocab_size={vocab_size}  (study column: GPT totals reported at vocab {STUDY_VOCAB_SIZE}, untied head)")
    print(f"{'arch':5} {'size':11} {'shape':22} {'params':>12} {'non-embed':>12} {'FLOPs/token':>14} "
          f"{'study':>8} {'ours/study':>10}")
    for r in rows:
        study = f"{r['study'] / 1e6:.1f}M" if r["study"] else ""
        ratio = f"{r['params'] / r['study']:.3f}" if r["study"] and vocab_size == STUDY_VOCAB_SIZE else ""
        print(f"{r['arch']:5} {r['size']:11} {r['shape']:22} {r['params']:>12,} {r['nonembed']:>12,} "
              f"{r['flops']:>14,} {study:>8} {ratio:>10}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=STUDY_VOCAB_SIZE)
    args = parser.parse_args(argv)
    if not 1 <= args.vocab_size <= 65536:
        parser.error(f"--vocab-size must be in [1, 65536] (uint16 token ids), got {args.vocab_size}")
    print_table(size_rows(args.vocab_size), args.vocab_size)


if __name__ == "__main__":
    main()
