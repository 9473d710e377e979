"""Progress bars for the long stages: redrawn every second on a terminal, at most once a minute into a log file."""

import sys

from tqdm import tqdm

LOG_INTERVAL_S = 60


def progress_bar(total, desc, unit, quiet=False):
    terminal = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, mininterval=1 if terminal else LOG_INTERVAL_S,
                maxinterval=LOG_INTERVAL_S, ascii=not terminal, dynamic_ncols=terminal, disable=quiet)
