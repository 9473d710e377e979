"""The best-model run: train one model for as long as a time budget allows, keep its best checkpoint by
validation loss, measure test loss and perplexity on the whole test split with it, and write samples.

    python sweep/run.py best --data DIR (--from results/NAME | --model gpt-xl) --time-budget 2h

Output in <results>/best/: metrics.json, checkpoint.pt (the best model), samples/t<temperature>_<nn>.abc and
.mid. It runs in this process, on the GPU when there is one: start it on a GPU node of the cluster.
"""

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import torch

from models import ARCHS, DEMO_SIZES, SIZES, load_model, save_model
from preprocessing.abc_tokens import Vocabulary
from preprocessing.abc_tools import abc_to_midi
from preprocessing.shards import load_meta, read_split
from sweep.batches import EpochWindows
from sweep.config import ConfigError, load_config, validate
from sweep.data import local_data_dir
from sweep.experiment import read_sweep_file
from sweep.training import evaluate, learning_rate, make_train_step, pick_device

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text):
    """'2h', '90m', '45s' or plain seconds -> seconds."""
    match = DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError("--time-budget", f"expected a duration like 2h, 90m or 600s, got {text!r}")
    return float(match.group(1)) * UNIT_S[match.group(2)]


def parse_best_args(argv):
    parser = argparse.ArgumentParser(prog="sweep/run.py best", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="prepared data folder or object-store URI")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="sweep", help="a finished sweep's results folder: its best trial's model")
    source.add_argument("--model", help="ARCH-SIZE, e.g. gpt-xl or lstm-cpu-small")
    parser.add_argument("--time-budget", required=True, help="training time, e.g. 2h (the test pass and the samples come after it)")
    parser.add_argument("--preset", help="training settings (default: the sweep's, or full with --model)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="output folder (default: <sweep>/best or results/best-<model>/best)")
    return parser.parse_args(argv)


def best_trial(sweep_dir):
    """(arch, size) of the trial with the lowest final validation loss in a sweep's results folder."""
    finals = []
    for params in Path(sweep_dir).glob("*/params.json"):
        lines = (params.parent / "result.json").read_text().splitlines()
        final = json.loads(lines[-1]) if lines else {}
        if math.isfinite(final.get("val_loss", math.nan)):
            finals.append((final["val_loss"], final["arch"], final["size"]))
    if not finals:
        raise ConfigError("--from", f"{sweep_dir} holds no trial with a final validation loss")
    _, arch, size = min(finals)
    return arch, size


def resolve_run(args):
    """The validated config, model and output folder; ConfigError names the bad argument."""
    if args.sweep:
        arch, size = best_trial(args.sweep)
        config = load_config(args.preset, args.set) if args.preset else validate(read_sweep_file(args.sweep)["config"])
        out = Path(args.out or Path(args.sweep) / "best")
    else:
        arch, _, size = args.model.partition("-")
        if arch not in ARCHS or size not in SIZES + DEMO_SIZES:
            raise ConfigError("--model", f"expected ARCH-SIZE like gpt-xl or lstm-cpu-small, got {args.model!r}")
        preset = args.preset or ("demo" if size in DEMO_SIZES else "full")
        config = load_config(preset, args.set + [f"archs=[{arch}]", f"sizes=[{size}]"])
        out = Path(args.out or Path("results") / f"best-{args.model}" / "best")
    return config, arch, size, out


class BestRun:
    def __init__(self, config, arch, size, data_dir, out_dir, budget_s):
        self.began = time.perf_counter()
        self.budget_s = budget_s
        self.out = Path(out_dir)
        self.train_config = {**config["train"], "arch": arch, "size": size, "seed": config["seed"]}
        self.best_config = config["best"]
        self.meta = load_meta(data_dir)
        self.splits = {split: read_split(data_dir, split) for split in ("train", "val", "test")}
        self.step_fn = make_train_step(self.train_config, self.meta["vocab_size"], pick_device())
        self.best_val, self.val_s, self.steps, self.tokens = math.inf, 0.0, 0, 0

    def elapsed(self):
        return time.perf_counter() - self.began

    def validate(self):
        began = time.perf_counter()
        loss = evaluate(self.step_fn, self.splits["val"], self.train_config["block_size"],
                        self.train_config["val_batch_size"])
        self.val_s = time.perf_counter() - began
        if loss < self.best_val:
            self.best_val = loss
            save_model(self.out / "checkpoint.pt", self.step_fn.model, self.meta["vocab_sha256"])
        return loss

    def out_of_time(self):
        # Leave room for a last validation, the test pass (about as long) and the samples.
        return self.elapsed() + 3 * self.val_s > self.budget_s

    def schedule_step(self, total):
        """Where the LR schedule stands: the share of max_epochs done or of the budget spent, the larger,
        so that a run cut by its budget still decays its learning rate to the end."""
        return max(self.steps, int(total * self.elapsed() / self.budget_s))

    def train(self):
        """Epochs of fresh seeded window orders, validating every eval_every steps, until the budget or
        max_epochs."""
        c = self.train_config
        epochs = [EpochWindows(self.splits["train"], c["block_size"], c["batch_size"], c["seed"] + epoch)
                  for epoch in range(self.best_config["max_epochs"])]
        total = sum(windows.steps for windows in epochs)
        self.validate()
        for windows in epochs:
            for step in range(windows.steps):
                if self.out_of_time():
                    self.validate()
                    return
                x, y = windows.batch(step)
                self.step_fn(x, y, learning_rate(self.schedule_step(total), total, c))
                self.steps += 1
                self.tokens += y.numel()
                if self.steps % self.best_config["eval_every"] == 0:
                    self.validate()
            self.validate()

    def test(self):
        model = load_model(self.out / "checkpoint.pt", self.meta["vocab_sha256"]).to(self.step_fn.device)
        self.step_fn.model.load_state_dict(model.state_dict())
        return evaluate(self.step_fn, self.splits["test"], self.train_config["block_size"],
                        self.train_config["val_batch_size"])

    def write_samples(self):
        """Tunes sampled from the best model after an end-of-tune token, as ABC and (when abc2midi can
        render them) MIDI."""
        vocab = Vocabulary.from_meta(self.meta)
        folder = self.out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        model, device = self.step_fn.model, self.step_fn.device
        samples = []
        for temperature in self.best_config["temperatures"]:
            for index in range(self.best_config["samples_per_temperature"]):
                prompt = torch.tensor([[vocab.eot_id]], device=device)
                ids = model.generate(prompt, self.best_config["max_new_tokens"], temperature=temperature,
                                     top_k=self.best_config["top_k"] or None)[0, 1:].tolist()
                ended = vocab.eot_id in ids
                ids = ids[: ids.index(vocab.eot_id)] if ended else ids
                name = f"t{temperature}_{index:02d}"
                abc = vocab.decode(ids)
                (folder / f"{name}.abc").write_text(abc)
                ok, message = abc_to_midi(abc, folder / f"{name}.mid")
                samples.append({"name": name, "temperature": temperature, "tokens": len(ids),
                                "ended": ended, "midi": ok,
                                "midi_message": message})
        return samples

    def run(self):
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(self.train_config["seed"])
        self.train()
        test_loss = self.test()
        model = self.step_fn.model
        metrics = {
            "model": f"{self.train_config['arch']}-{self.train_config['size']}",
            "arch": self.train_config["arch"], "size": self.train_config["size"],
            "params": model.num_params(), "params_nonembed": model.num_params(non_embedding=True),
            "test_loss": test_loss, "test_perplexity": math.exp(test_loss), "best_val_loss": self.best_val,
            "steps": self.steps, "tokens_seen": self.tokens,
            "epochs": self.tokens / ((len(self.splits["train"]) - 1) // self.train_config["block_size"]
                                     * self.train_config["block_size"]),
            "train_s": self.elapsed(), "time_budget_s": self.budget_s,
        }
        metrics["samples"] = self.write_samples()
        metrics["wall_s"] = self.elapsed()
        (self.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        return metrics


def best_main(argv):
    args = parse_best_args(argv)
    try:
        budget_s = parse_duration(args.time_budget)
        config, arch, size, out = resolve_run(args)
        data_dir = local_data_dir(args.data)
        load_meta(data_dir)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    metrics = BestRun(config, arch, size, data_dir, out, budget_s).run()
    print(f"{metrics['model']}: test loss {metrics['test_loss']:.4f}, perplexity {metrics['test_perplexity']:.2f}, "
          f"best val loss {metrics['best_val_loss']:.4f} after {metrics['steps']} steps")
    print(f"Best model, metrics and samples: {out}")
    return 0
