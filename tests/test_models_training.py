"""Models in use: overfitting, TrainStep on CPU, sampling, checkpoints."""

import pickle

import pytest
import torch

from models import (TrainStep, VocabMismatchError, build_model, estimate_mfu, load_model, model_from_payload,
                    model_payload, save_model, speed_options)
from models.mfu import peak_flops
from models.sampling import sample_next

ARCHS = ("gpt", "lstm")


pytestmark = pytest.mark.usefixtures("one_thread")


def batch(vocab_size, batch_size, block_size, seed=0):
    tokens = torch.randint(vocab_size, (batch_size, block_size + 1), generator=torch.Generator().manual_seed(seed))
    return tokens[:, :-1], tokens[:, 1:]


@pytest.mark.parametrize("arch", ARCHS)
def test_overfits_one_small_batch_to_near_zero_loss(arch):
    torch.manual_seed(0)
    model = build_model(arch, "cpu-tiny", 64, block_size=32)
    step = TrainStep(model, "cpu", learning_rate=1e-2, betas=(0.9, 0.95), weight_decay=0.0, grad_clip=1.0)
    x, y = batch(64, 4, 32)
    first = step.evaluate(x, y)
    for _ in range(400):
        if step(x, y, lr=1e-2).item() < 0.05:
            break
    assert first > 3.5
    assert step.evaluate(x, y) < 0.1


def test_train_step_on_cpu_is_fp32_unfused_flushes_denormals_and_restores_mode():
    torch.manual_seed(0)
    model = build_model("gpt", "cpu-tiny", 50, block_size=16)
    torch.set_flush_denormal(False)
    assert (torch.tensor([1e-39]) * 1.0).item() != 0.0
    step = TrainStep(model, "cpu", learning_rate=1e-3, betas=(0.9, 0.95), weight_decay=0.1, grad_clip=1.0)
    assert (torch.tensor([1e-39]) * 1.0).item() == 0.0  # denormals (an LSTM's saturated gates) run ~6x slower
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not any(group["fused"] for group in step.optimizer.param_groups)
    decayed, not_decayed = step.optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() == 2 for p in decayed["params"])
    assert not_decayed["weight_decay"] == 0.0 and all(p.dim() == 1 for p in not_decayed["params"])
    x, y = batch(50, 2, 16)
    loss = step(x, y, lr=5e-4)
    assert loss.dtype == torch.float32 and not loss.requires_grad
    assert all(group["lr"] == 5e-4 for group in step.optimizer.param_groups)
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    step.evaluate(x, y)
    assert not model.training
    restored = TrainStep(build_model("gpt", "cpu-tiny", 50, block_size=16), "cpu", 1e-3, (0.9, 0.95), 0.1, 1.0)
    restored.load_state_dict(step.state_dict())
    assert restored.optimizer.state_dict()["state"][0]["step"] == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_compile_applies_to_the_gpt_only_and_speed_options_keep_cpu_plain(arch):
    model = build_model(arch, "cpu-tiny", 50, block_size=16)
    compiled = TrainStep(model, "cpu", 1e-3, (0.9, 0.95), 0.1, 1.0, compile=True).forward
    assert (compiled is not model) == (arch == "gpt") == model.compilable
    assert speed_options("cpu", compile=True) == {"compile": False, "autocast_dtype": None}
    assert speed_options("cuda", compile=True) == {"compile": True, "autocast_dtype": torch.bfloat16}
    assert speed_options("cuda", compile=False)["compile"] is False


def test_sample_next_honours_top_k_top_p_and_temperature():
    torch.manual_seed(0)
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])
    logits = probs.log().expand(2000, 4)
    assert set(sample_next(logits, top_k=2).flatten().tolist()) == {0, 1}
    # Nucleus 0.5: token 0 (0.4) is not enough, tokens 0 and 1 (0.7) are; token 2 is never needed.
    assert set(sample_next(logits, top_p=0.5).flatten().tolist()) == {0, 1}
    assert set(sample_next(logits, top_p=1.0).flatten().tolist()) == {0, 1, 2, 3}
    assert set(sample_next(logits, temperature=0).flatten().tolist()) == {0}
    share_of_best = {t: (sample_next(logits, temperature=t) == 0).float().mean().item() for t in (0.2, 1.0, 5.0)}
    assert share_of_best[0.2] > 0.65 > share_of_best[1.0] > 0.33 > share_of_best[5.0]
    for bad in (dict(temperature=-1), dict(top_k=0), dict(top_p=0.0), dict(top_p=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            sample_next(logits, **bad)


@pytest.mark.parametrize("arch", ARCHS)
def test_generate_extends_past_block_size_and_greedy_equals_top_k_1(arch):
    torch.manual_seed(0)
    model = build_model(arch, "cpu-tiny", 30, block_size=8)
    prompt = torch.randint(30, (2, 3))
    out = model.generate(prompt, 20, top_k=5)
    assert out.shape == (2, 23) and torch.equal(out[:, :3], prompt) and model.training
    torch.manual_seed(1)
    top_1 = model.generate(prompt, 12, top_k=1)
    torch.manual_seed(2)
    assert torch.equal(top_1, model.generate(prompt, 12, temperature=0))
    assert torch.equal(top_1, model.generate(prompt, 12, top_p=1e-6))


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_round_trip_gives_identical_logits(arch, tmp_path):
    torch.manual_seed(0)
    model = build_model(arch, "cpu-small", 40, block_size=16).eval()
    path = tmp_path / "model.pt"
    save_model(path, model, vocab_sha256="abc")
    loaded = load_model(path, vocab_sha256="abc").eval()
    assert (loaded.arch, loaded.size, loaded.config) == (arch, "cpu-small", model.config)
    idx = torch.randint(40, (2, 16))
    with torch.no_grad():
        assert torch.equal(model(idx)[0], loaded(idx)[0])
    assert torch.equal(model_from_payload(model_payload(model, "abc"))(idx)[0], model(idx)[0])


def test_checkpoint_for_another_vocabulary_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path, build_model("lstm", "cpu-tiny", 40), vocab_sha256="aaa")
    with pytest.raises(VocabMismatchError, match="aaa.*bbb"):
        load_model(path, vocab_sha256="bbb")
    with pytest.raises(VocabMismatchError):
        model_from_payload(model_payload(build_model("gpt", "cpu-tiny", 40), "aaa"), vocab_sha256="bbb")


class NotAWeight:
    pass


def test_load_refuses_pickled_code_missing_files_and_foreign_payloads(tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save({"arch": NotAWeight()}, pickled)
    with pytest.raises(pickle.UnpicklingError):  # weights_only=True never runs arbitrary pickles
        load_model(pickled)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_model(tmp_path / "absent.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="foreign.pt.*missing"):
        load_model(foreign)
    payload = model_payload(build_model("gpt", "cpu-tiny", 40), "aaa")
    payload["config"]["n_experts"] = 8
    with pytest.raises(ValueError, match="n_experts"):
        model_from_payload(payload)


def test_mfu_needs_a_known_accelerator_peak():
    assert estimate_mfu(1e12, "cpu") is None
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA A100-SXM4-40GB") == 312e12
    assert peak_flops("NVIDIA GeForce RTX 3060") is None
