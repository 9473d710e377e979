"""Turn --input arguments into an explicit, sorted list of work items (no dataset metadata scans).

An item is one MIDI file ({"kind": "midi", "location": path or URI}) or one ABC tune
({"kind": "abc", "text": the tune}); "source" names it in the manifest. ABC files and tune books are
split into tunes here, in the driver, so every tune gets its own manifest row.

A remote file's "filesystem" is the URI of its bucket, as the input names it, from which pyarrow makes the
filesystem to read it with, once per bucket: so the URI's own options hold for every file under it
(gs://anonymous@bucket reads a public bucket without credentials). It is "" for anything local.
"""

import glob
import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.fs

from preprocessing.abc_tools import split_tunes

MIDI_SUFFIXES = (".mid", ".midi")
ABC_SUFFIX = ".abc"
LIST_SUFFIXES = (".txt", ".lst", ".list")
MUSIC21 = "music21"
REMOTE_LOOKUPS = 32  # listed URIs looked up at a time: each lookup is a round trip to the store


def resolve_inputs(inputs):
    """All items of all inputs, sorted by source, each source once; raises naming a missing input."""
    if not inputs:
        raise ValueError("--input: give at least one input")
    items = {}
    for spec in inputs:
        for item in items_of(str(spec)):
            items.setdefault(item["source"], item)
    return [items[source] for source in sorted(items)]


def items_of(spec):
    spec = as_local(spec)
    if spec == MUSIC21:
        return music21_items()
    if "://" in spec:
        return remote_items([spec])
    path = Path(spec)
    if path.is_dir():
        return [midi_item(location) for location in walk_midi(path)]
    if path.is_file():
        return file_items(path)
    matches = sorted(glob.glob(spec, recursive=True))
    if matches:
        return [item for match in matches if Path(match).is_file() for item in file_items(Path(match))]
    raise ValueError(f"--input {spec}: no such file, folder or matching glob")


def as_local(spec):
    """A file:// URI as the local path it names (so it is read as local files are); any other spec as it is."""
    return urllib.parse.unquote(urllib.parse.urlsplit(spec).path) if spec.startswith("file://") else spec


def file_items(path):
    suffix = path.suffix.lower()
    if suffix == ABC_SUFFIX:
        return abc_items(str(path.resolve()), path.read_text(encoding="latin-1"))
    if suffix in LIST_SUFFIXES:
        return listed_items(path)
    return [midi_item(str(path.resolve()))]  # anything else is offered to midi2abc; non-MIDI gets a record


def listed_items(list_path):
    """The items of a list file's entries; its URIs are looked up together (remote_items)."""
    lines = [line.strip() for line in list_path.read_text().splitlines()]
    entries = [as_local(line) for line in lines if line and not line.startswith("#")]
    uris = [entry for entry in entries if "://" in entry]
    local = [entry if os.path.isabs(entry) else str(list_path.parent / entry)
             for entry in entries if "://" not in entry]
    return [item for entry in local for item in items_of(entry)] + remote_items(uris)


def walk_midi(folder):
    """The MIDI files under folder as path strings; symlinked files resolved, symlinked folders not followed.

    os.scandir gives each entry's type from the folder listing itself, where os.walk plus an os.path.islink
    per file cost an lstat each (on a network file system, a round trip each). An unreadable folder raises,
    naming it, rather than losing its files."""
    folders = [os.path.realpath(folder)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    if not entry.is_symlink():
                        folders.append(entry.path)
                elif entry.name.lower().endswith(MIDI_SUFFIXES):
                    yield os.path.realpath(entry.path) if entry.is_symlink() else entry.path


def midi_item(location, filesystem=""):
    return {"source": location, "kind": "midi", "location": location, "text": "", "filesystem": filesystem}


def abc_items(source, book_text):
    """One item per tune of an ABC file; a file with no tune still gets one (rejected) item."""
    tunes = split_tunes(book_text)
    if not tunes:
        return [abc_item(source, source, "")]
    return [abc_item(f"{source}#{i}", source, tune) for i, tune in enumerate(tunes, 1)]


def abc_item(source, location, text):
    return {"source": source, "kind": "abc", "location": location, "text": text, "filesystem": ""}


def music21_items():
    """The ABC tunes bundled in music21's corpus, named music21/<book>#<n>."""
    import music21

    corpus = Path(music21.__file__).resolve().parent / "corpus"
    items = []
    for book in sorted(corpus.rglob("*")):
        if book.suffix.lower() == ABC_SUFFIX and book.is_file():
            name = f"{MUSIC21}/{book.relative_to(corpus).as_posix()}"
            items.extend(abc_items(name, book.read_text(encoding="latin-1")))
    return items


def remote_items(uris):
    """s3:// or gs:// URIs (anything pyarrow.fs knows), each a file or a folder searched recursively.

    One filesystem per bucket, not per URI (making one can cost a request of its own: S3 looks up the bucket's
    region), and the URIs are looked up REMOTE_LOOKUPS at a time: at one round trip each, one after the other,
    a list of Lakh's 176k URIs would take hours before any work started."""
    entries = list(located(uris))
    with ThreadPoolExecutor(REMOTE_LOOKUPS) as pool:
        infos = list(pool.map(lambda entry: entry[2].get_file_info(entry[3]), entries))
    missing = [entry[0] for entry, info in zip(entries, infos) if info.type == pyarrow.fs.FileType.NotFound]
    if missing:
        more = f" (and {len(missing) - 1} more of the URIs listed with it)" if len(missing) > 1 else ""
        raise ValueError(f"--input {missing[0]}: not found{more}")
    return [item for (_, bucket, filesystem, _), info in zip(entries, infos)
            for item in object_items(bucket, filesystem, info)]


def located(uris):
    """(URI, its bucket's URI, the bucket's filesystem, the URI's path in it) for each URI."""
    made = {}
    for uri in uris:
        bucket, key = bucket_and_key(uri)
        if bucket not in made:
            made[bucket] = pyarrow.fs.FileSystem.from_uri(bucket)  # the filesystem and the bucket's path in it
        filesystem, root = made[bucket]
        yield uri, bucket, filesystem, root.rstrip("/") + key


def object_items(bucket, filesystem, info):
    """The items of one URI, once looked up: of its file, or of the MIDI files in the folder it names."""
    if info.type == pyarrow.fs.FileType.Directory:
        listing = filesystem.get_file_info(pyarrow.fs.FileSelector(info.path, recursive=True))
        paths = [i.path for i in listing
                 if i.type == pyarrow.fs.FileType.File and i.path.lower().endswith(MIDI_SUFFIXES)]
    else:
        paths = [info.path]
    items = []
    for path in paths:
        location = f"{bucket.split('://', 1)[0]}://{path}"
        if path.lower().endswith(ABC_SUFFIX):
            with filesystem.open_input_stream(path) as stream:
                items.extend(abc_items(location, stream.read().decode("latin-1")))
        else:
            items.append(midi_item(location, filesystem=bucket))
    return items


def bucket_and_key(uri):
    """(the URI of its bucket, the path below it), without a request. The bucket's URI keeps the user info and
    query, which pyarrow needs to make the filesystem, and is the same for every file of a bucket (so a list of
    176k URIs is one dataset, not 176k)."""
    parts = urllib.parse.urlsplit(uri)
    bucket = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    return bucket, urllib.parse.unquote(parts.path).rstrip("/")


def ray_path(location):
    """The path that Ray reads a file by, and names it by in its "path" column: for a URI, its path in its
    filesystem (the URI without its scheme)."""
    return location.split("://", 1)[1] if "://" in location else location
