"""The metric names every trial reports: the contract between sweep/ and analysis/."""

METRICS = (
    "arch",
    "size",
    "params",
    "params_nonembed",
    "tokens_seen",
    "epoch_fraction",
    "train_loss",
    "val_loss",
    "wall_s",
    "tokens_per_s",
    "flops",
    "mfu",
    "peak_mem_mb",
    "truncated_by_budget",
)
