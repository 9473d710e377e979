"""One optimisation step, the same for every trial: bf16 autocast and fused AdamW on cuda, fp32 on CPU."""

import contextlib

import torch

from models.base import eval_mode


class TrainStep:
    """Owns the model on its device and its optimizer; the caller owns the LR schedule and data order."""

    def __init__(self, model, device, learning_rate, betas, weight_decay, grad_clip, compile=False):
        """compile=True applies torch.compile on cuda to the families that gain from it (model.compilable);
        on CPU it is ignored: compiling takes longer than a whole demo trial trains."""
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer = model.configure_optimizer(learning_rate, betas, weight_decay, self.device.type)
        self.grad_clip = grad_clip
        # The compiled wrapper shares parameters with self.model, whose state dict stays unprefixed.
        use_compile = compile and model.compilable and self.device.type == "cuda"
        self.forward = torch.compile(self.model) if use_compile else self.model

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

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

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state)
