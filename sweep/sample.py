"""Sample tunes from a best-model checkpoint, continuing a prompt:

    python sweep/run.py sample --checkpoint results/NAME/best/checkpoint.pt --data DIR \\
        (--prompt 'X:1\\nM:6/8\\nL:1/8\\nK:D\\n' | --prompt-file TUNE.abc) [--n 8] [--temperature 0.9] [--top-k 40]
        [--constrained]

writes sample_<nnn>.abc and, where abc2midi renders it, sample_<nnn>.mid into --out (default: prompted/ beside
the checkpoint). The prompt is ABC: a header (X: to K:, a V: line), perhaps opening bars. DIR is the prepared data
the model was trained on: its meta.json's vocabulary, whose sha256 the checkpoint must carry.
"""

import argparse
import pickle
import sys
from pathlib import Path

import torch

from models import load_model
from preprocessing.abc_tokens import Vocabulary
from preprocessing.shards import load_meta
from sweep.config import ConfigError
from sweep.samples import sample_tunes, write_tunes
from sweep.trainer import pick_device

LIMITS = {"n": 1, "temperature": 0, "top_k": 0, "max_new_tokens": 1}  # the least value of each


def parse_sample_args(argv):
    parser = argparse.ArgumentParser(prog="sweep/run.py sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a best-model run's checkpoint.pt")
    parser.add_argument("--data", required=True, help="the prepared data folder (or URI) the model was trained on")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help=r"ABC to continue; \n stands for a newline")
    prompt.add_argument("--prompt-file", help="a file of ABC to continue")
    parser.add_argument("--n", type=int, default=8, help="samples (default 8)")
    parser.add_argument("--temperature", type=float, default=0.9, help="default 0.9; 0: the likeliest token")
    parser.add_argument("--top-k", type=int, default=40, help="among the k likeliest tokens (default 40; 0: all)")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="at most this many tokens a sample")
    parser.add_argument("--constrained", action="store_true",
                        help="mask the tokens that would break the ABC (sweep/abc_grammar.py); off: the model's own")
    parser.add_argument("--seed", type=int, help="a seed, for the same samples again")
    parser.add_argument("--out", help="output folder (default: prompted/ beside the checkpoint)")
    return parser.parse_args(argv)


def check_numbers(args):
    for name, least in LIMITS.items():
        if getattr(args, name) < least:
            raise ConfigError(f"--{name.replace('_', '-')}", f"must be >= {least}, got {getattr(args, name)}")


def read_prompt(args):
    if args.prompt_file is None:
        text = args.prompt.replace("\\n", "\n")
    else:
        try:
            text = Path(args.prompt_file).read_text(encoding="latin-1")
        except OSError as error:
            raise ConfigError("--prompt-file", f"cannot read {args.prompt_file}: {error.strerror}") from None
    if not text.strip():
        raise ConfigError("--prompt-file" if args.prompt_file else "--prompt", "is empty: give at least a header")
    return text


def load_checkpoint(path, meta):
    """The model of a checkpoint trained on meta.json's vocabulary; ConfigError naming --checkpoint if not."""
    try:
        return load_model(path, meta["vocab_sha256"])
    except (OSError, ValueError) as error:
        raise ConfigError("--checkpoint", str(error)) from None
    except (RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as error:  # what torch.load raises on other files
        raise ConfigError("--checkpoint", f"{path} is not a model checkpoint ({type(error).__name__})") from None


def prepare(args):
    """(model, vocabulary, prompt), or ConfigError naming the bad argument."""
    check_numbers(args)
    prompt = read_prompt(args)
    try:  # meta.json alone: the vocabulary, not the shards
        meta = load_meta(args.data)
        vocab = Vocabulary.from_meta(meta)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError("--data", str(error)) from None
    return load_checkpoint(args.checkpoint, meta), vocab, prompt


def sample_main(argv):
    args = parse_sample_args(argv)
    try:
        model, vocab, prompt = prepare(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ids = vocab.encode(prompt)
    unknown = ids.count(vocab.unk_id)
    if unknown:
        print(f"note: {unknown} of the prompt's tokens are not in the vocabulary; the model reads them as <unk>",
              file=sys.stderr)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    device = pick_device()
    sampled = sample_tunes(model.to(device), vocab, [ids] * args.n, args.temperature, args.top_k,
                           args.max_new_tokens, device, args.constrained)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "prompted"
    records = write_tunes([prompt + vocab.decode(continuation) for continuation, _ in sampled], out,
                          [f"sample_{index:03d}" for index in range(args.n)])
    for record, (_, ended) in zip(records, sampled):
        how = "ended" if ended else "cut at --max-new-tokens, kept to its last whole bar"
        print(f"{record['name']}: {how}; abc2midi: "
              f"{record['midi_message'].splitlines()[0][:120] if record['midi_message'] else '-'}")
    valid = sum(r["midi"] and r["midi_message"] == "ok" for r in records)
    print(f"{args.n} samples in {out}: {sum(ended for _, ended in sampled)} ended by the model, {valid} rendered "
          f"by abc2midi without an error")
    return 0
