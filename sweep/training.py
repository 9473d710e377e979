"""What the sweep's trials and the best-model run share: the model and its step, the LR schedule,
evaluation over a whole split, and the training state a checkpoint holds."""

import math
import resource
from pathlib import Path

import torch

from models import TrainStep, build_model, model_from_payload, model_payload
from sweep.batches import evaluation_batches

STATE_FILE = "state.pt"


def pick_device():
    """cuda when this process was given a GPU (Ray sets CUDA_VISIBLE_DEVICES per trial), else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def make_train_step(config, vocab_size, device):
    torch.manual_seed(config["seed"])
    model = build_model(config["arch"], config["size"], vocab_size,
                        block_size=config["block_size"], dropout=config["dropout"])
    return TrainStep(model, device, config["learning_rate"], config["betas"], config["weight_decay"],
                     config["grad_clip"], compile=config["compile"])


def learning_rate(step, total_steps, config):
    """Linear warmup over warmup_fraction of the steps, then cosine down to min_learning_rate."""
    peak, floor = config["learning_rate"], config["min_learning_rate"]
    warmup = max(1, round(config["warmup_fraction"] * total_steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - floor)


def evaluate(train_step, tokens, block_size, batch_size):
    """Mean loss per token over the whole split."""
    total, count = 0.0, 0
    for x, y in evaluation_batches(tokens, block_size, batch_size):
        total += train_step.evaluate(x, y) * y.numel()
        count += y.numel()
    return total / count


def peak_memory_mb(device):
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def save_state(directory, train_step, progress, vocab_sha256):
    """Model, optimizer, progress (step, data position, clocks; the LR schedule is a function of the step)
    and RNG state, in one weights_only-loadable file."""
    state = {
        "model": model_payload(train_step.model, vocab_sha256),
        "optimizer": train_step.state_dict(),
        "progress": dict(progress),
        "rng": {"torch": torch.get_rng_state()},
    }
    if torch.cuda.is_available():
        state["rng"]["cuda"] = torch.cuda.get_rng_state()
    torch.save(state, Path(directory) / STATE_FILE)


def load_state(directory, train_step, vocab_sha256):
    """Restore model, optimizer and RNG into train_step; returns the saved progress dict."""
    state = torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)
    saved = model_from_payload(state["model"], vocab_sha256, source=str(directory))
    train_step.model.load_state_dict(saved.state_dict())
    train_step.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng"]["cuda"])
    return state["progress"]

