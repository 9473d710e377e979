"""The two model families of the study (GPT and parameter-matched LSTM) behind one interface."""

from models.checkpoint import VocabMismatchError, load_model, model_from_payload, model_payload, save_model
from models.mfu import estimate_mfu
from models.sizes import ARCHS, DEMO_SIZES, SIZES, build_model
from models.train_step import TrainStep, speed_options

__all__ = [
    "ARCHS", "DEMO_SIZES", "SIZES", "TrainStep", "VocabMismatchError", "build_model", "estimate_mfu",
    "load_model", "model_from_payload", "model_payload", "save_model", "speed_options",
]
