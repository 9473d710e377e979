"""The GPU speed path (torch.compile and bf16 autocast) run on CPU through the same TrainStep the trials use:
inductor compiles the GPT's forward and backward with the C++ compiler (its cache in /tmp/torchinductor_<user>
makes reruns quick; a cold compile of this tiny GPT takes ~50-80 s on 2 shared cores)."""

import math
import shutil

import pytest
import torch

from models import TrainStep, build_model, model_from_payload, model_payload

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

VOCAB, BLOCK, STEPS, LR = 64, 32, 6, 1e-3


def batch(seed):
    tokens = torch.randint(VOCAB, (4, BLOCK + 1), generator=torch.Generator().manual_seed(seed))
    return tokens[:, :-1], tokens[:, 1:]


def trained(compile, autocast_dtype):
    """A TrainStep of the tiny GPT after STEPS steps on fixed batches, and its losses."""
    torch.manual_seed(0)
    step = TrainStep(build_model("gpt", "cpu-tiny", VOCAB, block_size=BLOCK), "cpu", LR, (0.9, 0.95), 0.1, 1.0,
                     compile=compile, autocast_dtype=autocast_dtype)
    return step, [step(*batch(i), lr=LR).item() for i in range(STEPS)]


def test_compiled_bf16_training_matches_eager_and_its_checkpoint_loads_into_an_eager_model():
    assert shutil.which("g++") or shutil.which("gcc"), "inductor needs a C++ compiler on CPU"
    fp32, fp32_losses = trained(compile=False, autocast_dtype=None)
    eager, eager_losses = trained(compile=False, autocast_dtype=torch.bfloat16)
    compiled, compiled_losses = trained(compile=True, autocast_dtype=torch.bfloat16)
    assert isinstance(compiled.forward, torch._dynamo.eval_frame.OptimizedModule)
    with compiled.autocast():  # autocast is in effect: the logits come out in bf16
        assert compiled.model(*batch(0))[0].dtype == torch.bfloat16
    assert all(map(math.isfinite, fp32_losses + eager_losses + compiled_losses))
    assert eager_losses != fp32_losses  # bf16 rounding shows, but only in the last digits
    assert max(abs(a - b) for a, b in zip(eager_losses, fp32_losses)) < 1e-2
    assert max(abs(a - b) for a, b in zip(compiled_losses, eager_losses)) < 2e-3
    # The checkpoint of the compiled run (TrainStep keeps the plain module) goes on in an eager model.
    payload = model_payload(compiled.model, "vocab")
    assert not any(key.startswith("_orig_mod.") for key in payload["state_dict"])
    resumed = TrainStep(model_from_payload(payload, "vocab"), "cpu", LR, (0.9, 0.95), 0.1, 1.0,
                        autocast_dtype=torch.bfloat16)
    resumed.load_state_dict(compiled.state_dict())
    x, y = batch(STEPS)
    assert abs(resumed(x, y, lr=LR).item() - compiled(x, y, lr=LR).item()) < 2e-3
    for mine, theirs in zip(resumed.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-3)
