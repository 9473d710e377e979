"""Sweep results -> DataFrames -> power-law fits with intervals -> plots, report.md and sample quality."""

import importlib

from analysis.fit import PowerLawFit, TooFewPointsError, fit_power_law, leave_largest_out
from analysis.load import load_results, read_sweep_config

# analyze and sample_quality pull in matplotlib and music21 (seconds): import them on first use only
LAZY = {"analyze": "analysis.run", "sample_quality": "analysis.samples"}


def __getattr__(name):
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


__all__ = ["PowerLawFit", "TooFewPointsError", "analyze", "fit_power_law", "leave_largest_out", "load_results",
           "read_sweep_config", "sample_quality"]
