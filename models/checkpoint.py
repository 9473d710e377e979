"""Model checkpoints: state dict + config + the sha256 of the vocabulary it was trained on."""

import dataclasses
from pathlib import Path

import torch

from models.sizes import model_class

PAYLOAD_KEYS = ("arch", "size", "config", "state_dict", "vocab_sha256")


class VocabMismatchError(ValueError):
    """A checkpoint was built for another vocabulary than the data it is used with."""


def model_payload(model, vocab_sha256):
    """Everything needed to rebuild the model, as plain types and tensors (weights_only-loadable)."""
    return {
        "arch": model.arch,
        "size": model.size,
        "config": dataclasses.asdict(model.config),
        "state_dict": model.state_dict(),
        "vocab_sha256": vocab_sha256,
    }


def model_from_payload(payload, vocab_sha256=None, source="payload"):
    """Rebuild a model; raises VocabMismatchError when vocab_sha256 is given and differs."""
    missing = [key for key in PAYLOAD_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{source} is not a model checkpoint: missing {missing}")
    if vocab_sha256 is not None and payload["vocab_sha256"] != vocab_sha256:
        raise VocabMismatchError(
            f"{source} was trained on vocabulary sha256 {payload['vocab_sha256']}, "
            f"but the data uses vocabulary sha256 {vocab_sha256}: token ids would not mean the same")
    cls = model_class(payload["arch"])
    try:
        config = cls.config_class(**payload["config"])
    except TypeError as error:
        raise ValueError(f"{source}: config does not fit {cls.config_class.__name__}: {error}") from None
    model = cls(config, size=payload["size"])
    model.load_state_dict(payload["state_dict"])
    return model


def save_model(path, model, vocab_sha256):
    torch.save(model_payload(model, vocab_sha256), path)


def load_model(path, vocab_sha256=None, map_location="cpu"):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a model checkpoint: holds a {type(payload).__name__}")
    return model_from_payload(payload, vocab_sha256, source=str(path))
