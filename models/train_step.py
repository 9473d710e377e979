"""One optimisation step, the same for every trial: bf16 autocast, fused AdamW and torch.compile on cuda, fp32 on
CPU. The speed options are the caller's to choose (speed_options gives each device's); TrainStep honours them on
any device, so the compiled and bf16 path also runs, and is tested, on CPU."""

import contextlib

import torch
import torch.nn.functional as F

from models.base import eval_mode


def speed_options(device, compile):
    """TrainStep's options for a device: on cuda bf16 autocast, and torch.compile when asked; on CPU fp32 and no
    compile (compiling takes longer than a whole demo trial trains)."""
    cuda = torch.device(device).type == "cuda"
    return {"compile": compile and cuda, "autocast_dtype": torch.bfloat16 if cuda else None}


class TrainStep:
    """Owns the model on its device and its optimizer; the caller owns the LR schedule and data order."""

    def __init__(self, model, device, learning_rate, betas, weight_decay, grad_clip, compile=False,
                 autocast_dtype=None):
        """compile=True applies torch.compile to the families that gain from it (model.compilable);
        autocast_dtype (e.g. torch.bfloat16) runs the forward passes under autocast, None in fp32."""
        self.device = torch.device(device)
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)  # an LSTM's saturated gates give denormal floats: CPU steps ran ~6x slower
        self.model = model.to(self.device)
        self.optimizer = model.configure_optimizer(learning_rate, betas, weight_decay, self.device.type)
        self.grad_clip = grad_clip
        self.autocast_dtype = autocast_dtype
        # The compiled wrapper shares parameters with self.model, whose state dict stays unprefixed.
        self.forward = torch.compile(self.model) if compile and model.compilable else self.model

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def __call__(self, x, y, lr):
        """One step on the batch (x, y) at learning rate lr; returns the detached training loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        with self.autocast():
            _, loss = self.forward(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    @torch.no_grad()
    def evaluate(self, x, y):
        """Mean loss on (x, y) without gradients, in eval mode; the model's mode is restored after."""
        with eval_mode(self.model), self.autocast():
            _, loss = self.forward(x.to(self.device), y.to(self.device))
        return loss.item()

    @torch.no_grad()
    def token_losses(self, x, y):
        """The loss of every target of (x, y), shaped like y (0 where y is -1), without gradients, in eval mode."""
        with eval_mode(self.model), self.autocast():
            logits, _ = self.forward(x.to(self.device))
        return F.cross_entropy(logits.float().transpose(1, 2), y.to(self.device), ignore_index=-1, reduction="none")

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state)
