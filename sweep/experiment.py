"""The Tune experiment around the trainable: per-trial resources, budget stop, checkpoints, retries, resume.

results/<NAME>/ is Tune's own storage for the experiment; sweep.json beside the trial folders holds the
validated config and the data it ran on, so `--resume NAME` rebuilds the same trainable from it alone.
"""

import json
from pathlib import Path

import pyarrow.fs
from ray import tune
from ray.tune.execution.placement_groups import PlacementGroupFactory

from sweep.config import trial_space
from sweep.data import is_uri
from sweep.trial import train_trial

SWEEP_FILE = "sweep.json"
# Tune's per-trial stopper only backs the trial's own budget check up; it fires when a trial overruns badly.
BUDGET_BACKSTOP = 1.25


def trial_resources(resources, use_gpu):
    """Tune's resource function: CPUs for every trial, plus the size's GPU share when the cluster has GPUs."""
    cpus, gpu_shares = resources["cpus_per_trial"], resources["gpus_per_trial"]

    def of_config(trial_config):
        bundle = {"CPU": cpus}
        if use_gpu and gpu_shares[trial_config["size"]] > 0:
            bundle["GPU"] = gpu_shares[trial_config["size"]]
        return PlacementGroupFactory([bundle])

    return of_config


def trainable(config, use_gpu):
    return tune.with_resources(train_trial, trial_resources(config["resources"], use_gpu))


def run_config(config, name, storage, verbose):
    return tune.RunConfig(
        name=name,
        storage_path=storage_path(storage),
        stop={"time_total_s": config["train"]["time_budget_s"] * BUDGET_BACKSTOP},
        failure_config=tune.FailureConfig(max_failures=config["max_failures"]),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        verbose=verbose,
    )


def trial_name(trial):
    """gpt-cpu-tiny_<id>: the folder name says which model a trial trained."""
    return f"{trial.config['arch']}-{trial.config['size']}_{trial.trial_id}"


def tune_config(config):
    return tune.TuneConfig(max_concurrent_trials=config["max_concurrent_trials"] or None,
                           trial_name_creator=trial_name, trial_dirname_creator=trial_name)


def new_tuner(config, data, name, storage, use_gpu, verbose=1):
    return tune.Tuner(trainable(config, use_gpu), param_space=trial_space(config, data),
                      tune_config=tune_config(config), run_config=run_config(config, name, storage, verbose))


def restored_tuner(path, config, use_gpu):
    """Finished trials are kept, unfinished and errored ones continue from their last checkpoints."""
    return tune.Tuner.restore(str(path), trainable(config, use_gpu), resume_unfinished=True, resume_errored=True)


def storage_path(storage):
    return str(storage) if is_uri(storage) else str(Path(storage).resolve())


def experiment_path(storage, name):
    return f"{storage_path(storage).rstrip('/')}/{name}"


def write_sweep_file(storage, name, record):
    filesystem, root = pyarrow.fs.FileSystem.from_uri(experiment_path(storage, name))
    filesystem.create_dir(root, recursive=True)
    with filesystem.open_output_stream(f"{root}/{SWEEP_FILE}") as f:
        f.write(json.dumps(record, indent=1).encode())


def read_sweep_file(path):
    filesystem, root = pyarrow.fs.FileSystem.from_uri(str(path) if is_uri(path) else str(Path(path).resolve()))
    try:
        with filesystem.open_input_stream(f"{root}/{SWEEP_FILE}") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}/{SWEEP_FILE} not found: is {path} a sweep's results folder?") from None
