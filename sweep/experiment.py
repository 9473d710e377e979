"""The Tune experiment around the trainable: per-trial resources, budget stop, checkpoints, retries, resume.

results/<NAME>/ is Tune's own storage for the experiment; sweep.json beside the trial folders holds the
validated config and the data it ran on, so `--resume NAME` rebuilds the same trainable from it alone.
"""

import fcntl
import importlib.util
import json
import os
import re
import socket

from ray import tune
from ray.tune.execution.placement_groups import PlacementGroupFactory

from preprocessing import storage
from sweep.config import ConfigError, trial_space
from sweep.results import SWEEP_FILE
from sweep.trial import train_trial

# Tune's per-trial stopper only backs the trial's own budget check up; it fires when a trial overruns badly.
BUDGET_BACKSTOP = 1.25
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
LOCK_FILE = ".driver.lock"
TRACKERS = ("mlflow", "wandb")  # --log: the trackers Tune's own logger callbacks feed
held_claims = []  # the lock files this driver holds open until it exits


def trial_resources(resources, use_gpu):
    """Tune's resource function: CPUs for every trial, plus the size's GPU share when the cluster has GPUs."""
    cpus, gpu_shares = resources.cpus_per_trial, resources.gpus_per_trial

    def of_config(trial_config):
        bundle = {"CPU": cpus}
        if use_gpu and gpu_shares[trial_config["size"]] > 0:
            bundle["GPU"] = gpu_shares[trial_config["size"]]
        return PlacementGroupFactory([bundle])

    return of_config


def trainable(config, use_gpu, train_fn=train_trial):
    return tune.with_resources(train_fn, trial_resources(config.resources, use_gpu))


def check_tracker(tracker):
    """ConfigError naming --log when the tracker's package is not installed."""
    if tracker and importlib.util.find_spec(tracker) is None:
        raise ConfigError("--log", f"{tracker} is not installed: pip install -e '.[tracking]'")


def tracker_callbacks(tracker, name):
    """Tune's own logger callback that sends every trial's reports to MLflow or Weights & Biases, or none.
    MLflow logs where MLFLOW_TRACKING_URI says (its default: ./mlflow.db), in the experiment `name`;
    W&B in the project WANDB_PROJECT (default music-scaling), one group per sweep."""
    if tracker == "mlflow":
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        return [MLflowLoggerCallback(experiment_name=name)]
    if tracker == "wandb":
        from ray.air.integrations.wandb import WandbLoggerCallback

        return [WandbLoggerCallback(project=os.environ.get("WANDB_PROJECT", "music-scaling"), group=name)]
    return []


def run_config(config, name, storage_root, verbose, tracker=None):
    return tune.RunConfig(
        name=name,
        storage_path=storage.normalize(storage_root),
        stop={"time_total_s": config.train.time_budget_s * BUDGET_BACKSTOP},
        failure_config=tune.FailureConfig(max_failures=config.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=tracker_callbacks(tracker, name),
        verbose=verbose,
    )


def trial_name(trial):
    """gpt-cpu-tiny_<id>: the folder name says which model a trial trained."""
    return f"{trial.config['arch']}-{trial.config['size']}_{trial.trial_id}"


def tune_config(config):
    """A finished trial's actor runs the next trial of the same resources: a new one costs ~2.5 s of start-up."""
    return tune.TuneConfig(max_concurrent_trials=config.max_concurrent_trials or None, reuse_actors=True,
                           trial_name_creator=trial_name, trial_dirname_creator=trial_name)


def new_tuner(config, data, name, storage_root, use_gpu, verbose=1, train_fn=train_trial, tracker=None):
    return tune.Tuner(trainable(config, use_gpu, train_fn), param_space=trial_space(config, data),
                      tune_config=tune_config(config),
                      run_config=run_config(config, name, storage_root, verbose, tracker))


def restored_tuner(path, config, use_gpu):
    """Finished trials are kept, unfinished and errored ones continue from their last checkpoints."""
    return tune.Tuner.restore(str(path), trainable(config, use_gpu), resume_unfinished=True, resume_errored=True)


def experiment_path(storage_root, name, field="--name"):
    """results_dir of the sweep `name`; ConfigError when the name is not one plain folder name."""
    if not NAME.fullmatch(name):
        raise ConfigError(field, f"a sweep's name is one folder name of letters, digits, '.', '_' and '-', "
                                 f"got {name!r}")
    return storage.join(storage_root, name)


def claim(results_dir, resume):
    """Make results_dir this driver's before any work: a new sweep refuses a folder that holds one already, a
    resumed one needs it, and on a local or shared file system two drivers never run one sweep at once (a lock
    held until this process exits). Object stores offer no lock: there the first check is all."""
    field = "--resume" if resume else "--name"
    if not storage.is_uri(results_dir):
        os.makedirs(results_dir, exist_ok=True)
        lock = open(os.path.join(results_dir, LOCK_FILE), "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise ConfigError(field, f"{results_dir} is in use by another sweep driver ({lock.read().strip()}): "
                                     "wait for it to end, or choose another --name") from None
        lock.truncate(0)
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}")
        lock.flush()
        held_claims.append(lock)
    exists = storage.kind(storage.join(results_dir, SWEEP_FILE)) == "file"
    if exists and not resume:
        raise ConfigError(field, f"{results_dir} holds a sweep already: continue it with --resume, or choose "
                                 "another --name")
    if resume and not exists:
        raise ConfigError(field, f"{results_dir}/{SWEEP_FILE} not found: is {results_dir} a sweep's results folder?")


def write_sweep_file(results_dir, record):
    storage.write_text(storage.join(results_dir, SWEEP_FILE), json.dumps(record, indent=1))
