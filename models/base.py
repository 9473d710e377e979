"""What every language model of the study shares: counting, FLOPs, the optimizer and sampling."""

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.sampling import sample_next


@contextmanager
def eval_mode(model):
    """Eval mode for the duration, then back to whatever mode the model was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def next_token_loss(logits, targets):
    """Mean natural-log cross-entropy per token; targets of -1 are ignored."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


class LanguageModel(nn.Module):
    """Subclasses set `arch`, build `config`, and say which parameters are vocabulary tables."""

    arch = None
    compilable = True  # whether torch.compile speeds this family up (TrainStep asks)

    def __init__(self, config, size=None):
        super().__init__()
        self.config = config
        self.size = size

    def lookup_tables(self):
        """Parameters read by index (token and position embeddings): no FLOPs."""
        raise NotImplementedError

    def vocabulary_parameters(self):
        """Parameters excluded by num_params(non_embedding=True): lookup tables and the output head."""
        raise NotImplementedError

    def attention_flops_per_token(self):
        return 0

    def num_params(self, non_embedding=False):
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= sum(p.numel() for p in self.vocabulary_parameters())
        return total

    def flops_per_token(self):
        """Training FLOPs per token (forward + backward): 6 per matmul weight, plus attention."""
        matmul_params = self.num_params() - sum(p.numel() for p in self.lookup_tables())
        return 6 * matmul_params + self.attention_flops_per_token()

    def configure_optimizer(self, learning_rate, betas, weight_decay, device_type):
        """AdamW with weight decay on matrices only (not biases or norms); fused on cuda."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=tuple(betas), fused=device_type == "cuda")

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, pinned=None, start=None,
                 stop_id=None, grammar=None):
        """Extend idx (B, T) by max_new_tokens sampled tokens, or fewer once every row has sampled stop_id. The
        context is idx's last block_size tokens, or with pinned (B, P) (a tune's header) pinned and idx's last
        block_size - P; with start (B, S) too, start and all of idx while they fit (a tune's opening lines).
        grammar (sweep.abc_grammar.AbcGrammar, at idx's end) masks the tokens it does not allow."""
        stopped = torch.zeros(len(idx), dtype=torch.bool, device=idx.device)
        keep = self.config.block_size - (0 if pinned is None else pinned.size(1))
        with eval_mode(self):
            for _ in range(max_new_tokens):
                if start is not None and start.size(1) + idx.size(1) <= self.config.block_size:
                    context = torch.cat((start, idx), dim=1)
                else:
                    context = idx[:, -keep:] if pinned is None else torch.cat((pinned, idx[:, -keep:]), dim=1)
                logits = self(context)[0][:, -1, :]
                if grammar is not None:
                    logits = logits.masked_fill(~grammar.allowed(), float("-inf"))
                next_id = sample_next(logits, temperature, top_k, top_p)
                if grammar is not None:
                    grammar.advance(next_id[:, 0].tolist())
                idx = torch.cat((idx, next_id), dim=1)
                if stop_id is not None:
                    stopped |= next_id[:, 0] == stop_id
                    if stopped.all():
                        break
        return idx
