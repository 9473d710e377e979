"""How the preprocessing cuts its work into Ray tasks and places them on a machine's cores."""

import contextlib
import math
import os
import socket
from collections import deque

import ray

CORE_CLAIM = "\0music-scaling-core-{}"  # a name in Linux's abstract socket namespace (the leading NUL)


def cluster_cpus():
    """CPUs of the Ray cluster this process is connected to (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def block_count(items, per_block):
    """Blocks (one Ray task each) for items: about per_block items each, but at least two per CPU so that
    every CPU stays busy, and never an empty block (at least one block)."""
    return max(1, min(items, max(math.ceil(items / per_block), 2 * cluster_cpus())))


def ordered_results(calls, in_flight):
    """The results of Ray calls in their order, with at most in_flight of them submitted at a time. calls: an
    iterator that submits each call (returning its ObjectRef) only when asked for it."""
    pending = deque()
    for call in calls:
        pending.append(call)
        if len(pending) == in_flight:
            yield ray.get(pending.popleft())
    while pending:
        yield ray.get(pending.popleft())


@contextlib.contextmanager
def claimed_core():
    """Run this thread, and the programs it starts, on a core of its own for the with-block; yields the core,
    or None where every core is claimed or pinning is not allowed (it then runs where Linux chooses).

    A conversion alternates with the midi2abc it waits for. Left to Linux, the child often starts on another
    task's core and waits there while its parent's core idles (benchmarks/README.md: the claims pay more than
    10%). A core is claimed by binding its name: one holder per machine, released when the holder's process
    ends, even when killed."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else ()
    for core in sorted(cores):
        holder = claim(core)
        if holder is None:  # another task holds it
            continue
        with holder:
            try:
                os.sched_setaffinity(0, (core,))
            except OSError:  # forbidden (some containers' seccomp rules)
                break
            try:
                yield core
            finally:
                os.sched_setaffinity(0, cores)
            return
    yield None


def claim(core):
    """The core's claim: a socket bound to its name, held until closed; None while another holds it."""
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        holder.bind(CORE_CLAIM.format(core))
    except OSError:
        holder.close()
        return None
    return holder
