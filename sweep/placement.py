"""Which trials of a sweep run at once, predicted from their resource shares.

Ray places a trial's bundle (its CPUs and GPU share) on one node: a share below one GPU packs with others onto
a single GPU, a share of one takes a whole free GPU. Tune creates the trials in its grid order (the first key
varies fastest) and starts each waiting trial as soon as it fits, earlier ones first; a later trial that fits
does not wait behind an earlier one that does not. `schedule` replays that for trials of given durations (equal
by default: the sweep's waves). Pure functions of the shares, the nodes and the order, apart from `tune_demands`,
which reads them off a SweepConfig the way sweep/experiment.py and Tune do.
"""

EPS = 1e-9  # shares like 0.1 do not add up exactly in binary


def place(demand, free):
    """Where a trial of demand (cpus, gpu_share), a share from 0 to 1, fits on free ([cpus, [room per GPU]] per
    node): (node, GPU or None) on the first node with the CPUs and the first GPU with room; None if nowhere."""
    cpus, share = demand
    for node, (cpus_free, rooms) in enumerate(free):
        if cpus_free + EPS < cpus:
            continue
        if share < EPS:
            return node, None
        gpu = next((g for g, room in enumerate(rooms) if room + EPS >= share), None)
        if gpu is not None:
            return node, gpu
    return None


def take(free, demand, spot, sign=1):
    """Reserve (sign 1) or release (sign -1) demand at spot (node, GPU) in free."""
    cpus, share = demand
    node, gpu = spot
    free[node][0] -= sign * cpus
    if gpu is not None:
        free[node][1][gpu] -= sign * share


def free_capacity(nodes):
    """nodes: (cpus, gpus) per node, as Ray counts them."""
    return [[cpus, [1.0] * int(gpus)] for cpus, gpus in nodes]


def first_fit(demands, waiting, free, limit=None):
    """The waiting trials (indices, in Tune's order) that start now, each placed in turn; free is updated.
    Returns [(trial, spot)]; limit caps how many may start (max_concurrent_trials)."""
    started = []
    for trial in waiting:
        if limit is not None and len(started) >= limit:
            break
        spot = place(demands[trial], free)
        if spot is not None:
            take(free, demands[trial], spot)
            started.append((trial, spot))
    return started


def schedule(demands, nodes, durations=None, max_concurrent=0):
    """(start, end) of each trial when Tune starts trials in order (demands: (cpus, gpu_share) each) as soon as
    they fit on nodes, each running durations[i] (1 by default). Raises ValueError for a trial that fits no node."""
    durations = durations or [1.0] * len(demands)
    free, waiting, running, spans = free_capacity(nodes), list(range(len(demands))), [], [None] * len(demands)
    now = 0.0
    while waiting:
        limit = max_concurrent - len(running) if max_concurrent else None
        for trial, spot in first_fit(demands, waiting, free, limit):
            waiting.remove(trial)
            running.append((now + durations[trial], trial, spot))
            spans[trial] = (now, now + durations[trial])
        if not running:
            raise ValueError(f"trial {waiting[0]} needs {demands[waiting[0]]} (CPUs, GPU share): more than any "
                             f"node of {nodes} (CPUs, GPUs) has")
        now = min(end for end, _, _ in running)
        for end, trial, spot in [r for r in running if r[0] <= now]:
            take(free, demands[trial], spot, sign=-1)
            running.remove((end, trial, spot))
    return spans


def waves(spans):
    """Trial indices grouped by start time, earliest first."""
    starts = sorted({start for start, _ in spans})
    return [[i for i, (start, _) in enumerate(spans) if start == s] for s in starts]


def max_concurrency(spans):
    return max(sum(start <= s < end for start, end in spans) for s, _ in spans)


def tune_demands(config, use_gpu):
    """(trial configs in the order Tune creates them, their (cpus, gpu_share) demands) for a SweepConfig."""
    from ray.tune.search.variant_generator import generate_variants

    from sweep.config import trial_space
    from sweep.experiment import trial_resources

    specs = [spec for _, spec in generate_variants(trial_space(config, data=""))]
    bundles = [trial_resources(config.resources, use_gpu)(spec).bundles[0] for spec in specs]
    return specs, [(bundle.get("CPU", 0), bundle.get("GPU", 0)) for bundle in bundles]


def measured_span(reports):
    """(start, end), in seconds since the epoch, of a trial's run as Tune recorded it (its result.json lines):
    each report's whole-second `timestamp` bounds the start to [timestamp - time_total_s, timestamp + 1 -
    time_total_s); the bounds of all reports narrow it."""
    low = max(r["timestamp"] - r["time_total_s"] for r in reports)
    high = min(r["timestamp"] + 1 - r["time_total_s"] for r in reports)
    start = (low + high) / 2
    return start, start + reports[-1]["time_total_s"]
