"""How the preprocessing cuts its work into Ray tasks."""

import math

import ray


def cluster_cpus():
    """CPUs of the Ray cluster this process is connected to (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def block_count(items, per_block):
    """Blocks (one Ray task each) for items: about per_block items each, but at least two per CPU so that
    every CPU stays busy, and never an empty block (at least one block)."""
    return max(1, min(items, max(math.ceil(items / per_block), 2 * cluster_cpus())))
