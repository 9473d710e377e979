"""python preprocessing/run.py --input PATH [--input PATH ...] --out DIR [options]

Exits 0 when done, 2 on a bad argument (refused before any work), 1 when the run fails (too few usable tunes,
a full disk), each with a message."""

import argparse
import errno
import sys

import ray

from preprocessing.pipeline import TooFewTunesError, prepare
from preprocessing.settings import Settings

USAGE_ERROR = 2


def parse_args(argv=None):
    defaults = Settings()
    parser = argparse.ArgumentParser(description="MIDI/ABC corpus -> clean ABC -> token shards (Ray Data)")
    parser.add_argument("--input", action="append", required=True, metavar="PATH",
                        help="folder, glob, list file, s3:// or gs:// URI, .abc tune book, or 'music21' "
                             "(the folk tunes bundled in music21); repeatable")
    parser.add_argument("--out", required=True, help="output data folder")
    parser.add_argument("--num-cpus", type=int, help="start a local Ray with this many CPUs "
                        "(default: join a running cluster if there is one, else a local Ray with all CPUs)")
    parser.add_argument("--address", help="Ray address to join (default: a running cluster, else local)")
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds per file for midi2abc")
    parser.add_argument("--split", default=",".join(map(str, defaults.split)), help="train,val,test fractions")
    for name in ("min_notes", "min_bars", "max_notes", "max_bars", "chunk_tokens", "min_count", "max_vocab",
                 "batch_size"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--midi2abc-flags", default=" ".join(defaults.midi2abc_flags))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    parser.add_argument("--verify", action="store_true", help="on a rerun into the same --out, tell changed inputs "
                        "by the md5 of their bytes (reads them all), not by their sizes and modification times")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def ray_address(args):
    """An explicit address, else a running cluster's, else None (a local Ray is started)."""
    if args.address or args.num_cpus:
        return args.address
    try:
        ray.init(address="auto", log_to_driver=False)
    except ConnectionError:
        return None
    return "auto"


def main(argv=None):
    args = parse_args(argv)
    settings = {k: v for k, v in vars(args).items() if k not in ("input", "out")}
    try:
        Settings.from_kwargs(**settings)  # a bad value is refused before Ray starts
        settings["address"] = ray_address(args)
        prepare(args.input, args.out, **settings)
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError) as error:
        fail(error, USAGE_ERROR)
    except TooFewTunesError as error:
        fail(error, 1)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left" not in str(error):
            raise
        fail(f"the disk that holds --out {args.out} is full ({error}); free some space there and run the same "
             f"command again (it resumes), or choose another --out", 1)
    finally:
        if ray.is_initialized():
            ray.shutdown()


def fail(message, code):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
