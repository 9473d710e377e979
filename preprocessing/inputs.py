"""Turn --input arguments into an explicit, sorted list of work items (no dataset metadata scans).

An item is one MIDI file ({"kind": "midi", "location": path or URI}) or one ABC tune
({"kind": "abc", "text": the tune}); "source" names it in the manifest. ABC files and tune books are
split into tunes here, in the driver, so every tune gets its own manifest row.

A remote file's "filesystem" is the URI of its bucket, as the input names it, from which pyarrow makes the
filesystem to read it with, once per bucket: so the URI's own options hold for every file under it
(gs://anonymous@bucket reads a public bucket without credentials). It is "" for anything local.

An item's "stamp" tells a changed input from the one an earlier run read: a file's size and modification
time (as the listing gives them), an ABC tune's md5.
"""

import glob
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.fs

from preprocessing.abc_tools import split_tunes
from preprocessing.storage import as_local, bucket_and_key, bucket_filesystem, is_uri, resolve

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
    if not items:
        raise ValueError(f"--input {' '.join(map(str, inputs))}: no MIDI file (.mid, .midi) or ABC tune found")
    local = [items[source] for source in sorted(items) if items[source]["stamp"] is None]
    for item, info in zip(local, pyarrow.fs.LocalFileSystem().get_file_info([i["location"] for i in local])):
        item["stamp"] = stamp_of(info)  # local files are stamped in one call
    return [items[source] for source in sorted(items)]


def items_of(spec):
    local = as_local(spec)  # a file:// URI is read as the local path it names
    if local == MUSIC21:
        return music21_items()
    if is_uri(local):
        return remote_items([local])
    path = Path(local)
    if path.is_dir():
        return [midi_item(location) for location in walk_midi(path)]
    if path.is_file():
        return file_items(path)
    matches = sorted(glob.glob(local, recursive=True))
    if matches:
        return [item for match in matches if Path(match).is_file() for item in file_items(Path(match))]
    raise ValueError(f"--input {spec}: no such file, folder or matching glob")


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
    uris = [entry for entry in entries if is_uri(entry)]
    local = [entry if os.path.isabs(entry) else str(list_path.parent / entry)
             for entry in entries if not is_uri(entry)]
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


def midi_item(location, filesystem="", stamp=None):
    return {"source": location, "kind": "midi", "location": location, "text": "", "filesystem": filesystem,
            "stamp": stamp}


def stamp_of(info):
    return f"{info.size} {info.mtime_ns}"


def abc_items(source, book_text):
    """One item per tune of an ABC file; a file with no tune still gets one (rejected) item."""
    tunes = split_tunes(book_text)
    if not tunes:
        return [abc_item(source, source, "")]
    return [abc_item(f"{source}#{i}", source, tune) for i, tune in enumerate(tunes, 1)]


def abc_item(source, location, text):
    return {"source": source, "kind": "abc", "location": location, "text": text, "filesystem": "",
            "stamp": hashlib.md5(text.encode("utf-8", "replace")).hexdigest()}


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
    located = [resolve(uri) for uri in uris]  # (the bucket's filesystem, the URI's path in it)
    with ThreadPoolExecutor(REMOTE_LOOKUPS) as pool:
        infos = list(pool.map(lambda at: at[0].get_file_info(at[1]), located))
    missing = [uri for uri, info in zip(uris, infos) if info.type == pyarrow.fs.FileType.NotFound]
    if missing:
        more = f" (and {len(missing) - 1} more of the URIs listed with it)" if len(missing) > 1 else ""
        raise ValueError(f"--input {missing[0]}: not found{more}")
    # The bucket's URI, with the options the user wrote, is the same for each of its files: one dataset for all.
    return [item for uri, (filesystem, _), info in zip(uris, located, infos)
            for item in object_items(bucket_and_key(uri)[0], filesystem, info)]


def object_items(bucket, filesystem, info):
    """The items of one URI, once looked up: of its file, or of the MIDI files in the folder it names."""
    files = [info]
    if info.type == pyarrow.fs.FileType.Directory:
        listing = filesystem.get_file_info(pyarrow.fs.FileSelector(info.path, recursive=True))
        files = [i for i in listing if i.type == pyarrow.fs.FileType.File and i.path.lower().endswith(MIDI_SUFFIXES)]
    items = []
    for file in files:
        location = f"{bucket.split('://', 1)[0]}://{file.path}"
        if file.path.lower().endswith(ABC_SUFFIX):
            with filesystem.open_input_stream(file.path) as stream:
                items.extend(abc_items(location, stream.read().decode("latin-1")))
        else:
            items.append(midi_item(location, bucket, stamp_of(file)))
    return items


def file_md5s(items):
    """The md5 of each MIDI item's bytes ("" where unreadable, as in the manifest), REMOTE_LOOKUPS at a time."""
    with ThreadPoolExecutor(REMOTE_LOOKUPS) as pool:
        return list(pool.map(file_md5, items))


def file_md5(item):
    remote = item["filesystem"]
    filesystem = bucket_filesystem(remote)[0] if remote else pyarrow.fs.LocalFileSystem()
    try:
        with filesystem.open_input_stream(ray_path(item["location"])) as stream:
            return hashlib.md5(stream.read()).hexdigest()
    except OSError:
        return ""


def ray_path(location):
    """The path that Ray reads a file by, and names it by in its "path" column: for a URI, its path in its
    filesystem (the URI without its scheme)."""
    return location.split("://", 1)[1] if "://" in location else location
