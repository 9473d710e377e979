"""How often a checkpoint's own samples are valid ABC for abc2midi, over many more prompts than a best-model run
writes: free samples from the headers of the first N test tunes and continuations of their openings, at each
temperature, as the best-model run samples them (sweep/samples.py), and the errors of those that fail.

    python benchmarks/sample_validity.py --checkpoint results/NAME/best/checkpoint.pt --data data/music21 --n 40
"""

import argparse
import collections
import dataclasses
import re
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import load_model  # noqa: E402
from preprocessing.abc_tokens import Vocabulary  # noqa: E402
from preprocessing.shards import load_meta, read_split  # noqa: E402
from sweep.batches import TuneHeaders  # noqa: E402
from sweep.config import load_config  # noqa: E402
from sweep.samples import prompt_tunes, write_samples  # noqa: E402

ERROR = re.compile(r"Error in line-char [\d-]+ : ")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--n", type=int, default=40, help="test tunes, so samples per temperature and prompt kind")
    parser.add_argument("--preset", default="demo", help="the preset whose best: settings sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    meta = load_meta(args.data)
    vocab = Vocabulary.from_meta(meta)
    model = load_model(args.checkpoint, meta["vocab_sha256"])
    best = dataclasses.replace(load_config(args.preset, []).best, samples_per_temperature=args.n)
    prompts = prompt_tunes(TuneHeaders(read_split(args.data, "test"), vocab.tokens), vocab, args.n)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        records = write_samples(model, vocab, Path(folder), best, "cpu", prompts)
    valid, total, errors = collections.Counter(), collections.Counter(), collections.Counter()
    for record in records:
        setting = (record["temperature"], record["prompt"])
        total[setting] += 1
        valid[setting] += record["midi_message"] == "ok"
        if record["midi_message"] != "ok":
            errors.update({ERROR.sub("", message).strip() for message in record["midi_message"].split(";")})
    for temperature, prompt in total:
        print(f"temperature {temperature} {prompt:8s} {valid[temperature, prompt]:4d} of {total[temperature, prompt]}")
    print(f"all: {sum(valid.values())} of {len(records)} valid ({sum(valid.values()) / len(records):.1%})")
    print("errors (samples naming each):", dict(errors.most_common()))


if __name__ == "__main__":
    main()
