"""The best-model run: train one model for as long as a time budget allows, keep its best checkpoint by
validation loss, measure test loss and perplexity on the whole test split with it, and write samples.

    python sweep/run.py best --data DIR (--from results/NAME | --model gpt-xl) --time-budget 2h

Output in <results>/best/: metrics.json, checkpoint.pt (the best model), samples/t<temperature>_free_<nnn> (from
a test tune's header) and t<temperature>_opening_<nnn> (continuing a test tune's first bars), each .abc and .mid;
with --constrained, as many again by constrained decoding, t<temperature>_<free|opening>_constrained_<nnn>.
It runs in this process, on the GPU when there is one: start it on a GPU node of the cluster.
"""

import argparse
import dataclasses
import json
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path

from models import ARCHS, DEMO_SIZES, SIZES, load_model, save_model
from preprocessing import storage
from preprocessing.abc_tokens import Vocabulary
from preprocessing.progress import progress_bar
from preprocessing.shards import load_meta, read_split, verify_shards
from sweep.batches import TuneHeaders
from sweep.config import ConfigError, TrialPoint, apply_overrides, load_config, validate
from sweep.data import local_data_dir
from sweep.losses import loss_metrics
from sweep.results import load_results, read_sweep_file
from sweep.samples import prompt_tunes, write_samples
from sweep.trainer import Trainer

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
    parser.add_argument("--constrained", action="store_true", help="also sample as many tunes by constrained "
                        "decoding (tokens that would break the ABC masked), beside the model's own")
    return parser.parse_args(argv)


def best_trial(sweep_dir):
    """The TrialPoint of the finished trial with the lowest final validation loss on the whole train split in
    a sweep's results (trained again here on the whole split)."""
    try:
        trials, _ = load_results(sweep_dir)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError("--from", str(error)) from None
    finished = trials[(trials["status"] == "ok") & (trials["data_fraction"] == trials["data_fraction"].max())]
    if finished.empty:
        raise ConfigError("--from", f"{sweep_dir} holds no finished trial with a final validation loss")
    best = finished.loc[finished["val_loss"].idxmin()]
    return TrialPoint(best["arch"], best["size"], float(best["learning_rate"]), 1.0, int(best["seed"]))


def resolve_run(args):
    """The validated config, model and output folder; ConfigError names the bad argument."""
    if args.sweep:
        point = best_trial(args.sweep)
        config = (load_config(args.preset, args.set) if args.preset
                  else validate(apply_overrides(read_sweep_file(args.sweep)["config"], args.set)))
        out = args.out or storage.join(args.sweep, "best")
    else:
        arch, _, size = args.model.partition("-")
        if arch not in ARCHS or size not in SIZES + DEMO_SIZES:
            raise ConfigError("--model", f"expected ARCH-SIZE like gpt-xl or lstm-cpu-small, got {args.model!r}")
        preset = args.preset or ("demo" if size in DEMO_SIZES else "full")
        config = load_config(preset, args.set + [f"archs=[{arch}]", f"sizes=[{size}]"])
        if len(config.grid.learning_rates) != 1:
            raise ConfigError("grid.learning_rates", f"the {preset} preset searches {len(config.grid.learning_rates)}"
                                                     " learning rates: choose one with --set grid.learning_rates=[LR]")
        point = TrialPoint(arch, size, config.grid.learning_rates[0], 1.0, config.grid.seeds[0])
        out = args.out or str(Path("results") / f"best-{args.model}" / "best")
    return config, point, out


class BestRun(Trainer):
    """Epochs of fresh seeded window orders over the whole train split until the budget or best.max_epochs,
    validating every best.eval_every steps and at each epoch's end; keeps the checkpoint best on validation."""

    def __init__(self, config, point, data_dir, out_dir, budget_s, constrained=False):
        whole_split = dataclasses.replace(config.train, max_train_tokens=0)  # a sweep's cap is for its trials
        super().__init__(whole_split, point, load_meta(data_dir), read_split(data_dir, "train"),
                         read_split(data_dir, "val"), budget_s, epochs=config.best.max_epochs, anneal_by_time=True)
        self.best, self.constrained = config.best, constrained
        self.test = TuneHeaders(read_split(data_dir, "test"), self.meta["vocab"])
        self.out = Path(out_dir)
        self.checkpoint = self.out / "checkpoint.pt"
        per_epoch = self.windows.steps_per_epoch
        self.validation_steps = ({s for s in range(self.best.eval_every, self.windows.steps, self.best.eval_every)}
                                 | {e * per_epoch for e in range(1, self.best.max_epochs)})
        self.best_val = math.inf
        self.bar = progress_bar(self.windows.steps, f"best model {point.arch}-{point.size}", "step")

    def progressed(self):
        """The bar: steps done, the recent training loss, the best validation loss, the budget left."""
        self.bar.update(self.step - self.bar.n)
        self.bar.set_postfix_str(f"train loss {self.take_train_loss():.3f}, best val loss {self.best_val:.3f}, "
                                 f"{max(0.0, self.budget_s - self.wall_s()):.0f} s of budget left", refresh=False)

    def validated(self, val):
        if val["val_loss"] < self.best_val:
            self.best_val = val["val_loss"]
            save_model(self.checkpoint, self.model, self.meta["vocab_sha256"])
        self.progressed()

    def finished(self, val, truncated):
        self.validated(val)
        self.bar.close()
        train_s = self.wall_s()
        self.model.load_state_dict(load_model(self.checkpoint, self.meta["vocab_sha256"]).state_dict())
        test = loss_metrics("test", *self.evaluate(self.test), self.meta)
        metrics = {
            "model": f"{self.arch}-{self.size}", "arch": self.arch, "size": self.size,
            "learning_rate": self.point.learning_rate, "seed": self.point.seed,
            "params": self.model.num_params(), "params_nonembed": self.model.num_params(non_embedding=True),
            **test, "test_perplexity": math.exp(test["test_loss"]), "best_val_loss": self.best_val,
            "steps": self.step, "tokens_seen": self.tokens_seen, "epochs": self.tokens_seen / self.windows.tokens_per_epoch,
            "truncated_by_budget": truncated, "train_s": train_s, "time_budget_s": self.budget_s,
        }
        vocab = Vocabulary.from_meta(self.meta)
        prompts = prompt_tunes(self.test, vocab, self.best.samples_per_temperature)
        metrics["samples"] = write_samples(self.model, vocab, self.out / "samples", self.best, self.device, prompts,
                                           self.constrained)
        metrics["wall_s"] = self.wall_s()
        storage.write_text(self.out / "metrics.json", json.dumps(metrics, indent=1))
        return metrics


def best_main(argv):
    args = parse_best_args(argv)
    try:
        budget_s = parse_duration(args.time_budget)
        config, point, out = resolve_run(args)
        data_dir = local_data_dir(args.data)
        verify_shards(data_dir)
    except (ConfigError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # On object storage the run writes into a local folder, uploaded whole at the end.
    local_out = Path(tempfile.mkdtemp(prefix="best-")) if storage.is_uri(out) else Path(out)
    local_out.mkdir(parents=True, exist_ok=True)
    metrics = BestRun(config, point, data_dir, local_out, budget_s, args.constrained).run()
    if storage.is_uri(out):
        storage.upload(local_out, out)
        shutil.rmtree(local_out)
    print(f"{metrics['model']}: test loss {metrics['test_loss']:.4f}, perplexity {metrics['test_perplexity']:.2f}, "
          f"best val loss {metrics['best_val_loss']:.4f} after {metrics['steps']} steps")
    print(f"Best model, metrics and samples: {out}")
    return 0
