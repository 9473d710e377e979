"""Local paths and object-store URIs (s3://, gs://, hdfs://; file:// is a local path) behind one set of calls.

Every stage reads and writes through here: a location is a path or a URI, given as a string or a Path.
A URI's filesystem is made once per bucket, from the bucket's URI as the user wrote it, so its options
(gs://anonymous@bucket reads a public bucket without credentials) hold for every file under it.
"""

import contextlib
import functools
import os
import urllib.parse
import uuid
from pathlib import Path

import pyarrow.fs as pafs


def as_local(location):
    """A file:// URI as the local path it names; anything else as it is (a string)."""
    location = str(location)
    if location.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlsplit(location).path)
    return location


def is_uri(location):
    """True for object-store URIs; local paths and file:// URIs are not."""
    return "://" in as_local(location)


def normalize(location):
    """An absolute local path, or the URI as it is: what every node and working directory reads alike."""
    location = as_local(location)
    return location if is_uri(location) else str(Path(location).resolve())


def join(location, *parts):
    """The location of a file or folder inside a folder; a URI keeps its options (the query) at its end."""
    location = normalize(location)
    if not is_uri(location):
        return os.path.join(location, *parts)
    scheme, netloc, path, query, _ = urllib.parse.urlsplit(location)
    return urllib.parse.urlunsplit((scheme, netloc, "/".join([path.rstrip("/"), *parts]), query, ""))


def bucket_and_key(uri):
    """(the URI of its bucket, the path below it), without a request. The bucket's URI keeps the user info and
    query that pyarrow needs to make the filesystem."""
    parts = urllib.parse.urlsplit(uri)
    bucket = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    return bucket, urllib.parse.unquote(parts.path).rstrip("/")


@functools.lru_cache(maxsize=None)
def bucket_filesystem(bucket):
    """(filesystem, the bucket's root path in it); made once per bucket (S3 looks up the region each time)."""
    return pafs.FileSystem.from_uri(bucket)


def resolve(location):
    """(pyarrow filesystem, path in it) for a location."""
    location = normalize(location)
    if not is_uri(location):
        return pafs.LocalFileSystem(), location
    bucket, key = bucket_and_key(location)
    filesystem, root = bucket_filesystem(bucket)
    return filesystem, root.rstrip("/") + key


def uri_of(location, path):
    """The location of `path`, a path inside the filesystem of `location` (as a listing gives it)."""
    if not is_uri(location):
        return path
    bucket, _ = bucket_and_key(normalize(location))
    _, root = bucket_filesystem(bucket)
    return join(bucket, path.removeprefix(root.rstrip("/")).lstrip("/"))


def kind(location):
    """'file', 'dir' or None (missing)."""
    filesystem, path = resolve(location)
    found = filesystem.get_file_info(path).type
    return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(found)


def read_bytes(location):
    """The file's bytes; FileNotFoundError names the location."""
    filesystem, path = resolve(location)
    try:
        with filesystem.open_input_stream(path) as stream:
            return stream.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{location} not found") from None
    except OSError as error:
        if kind(location) is None:
            raise FileNotFoundError(f"{location} not found") from None
        raise OSError(f"{location}: {error}") from None


def read_text(location):
    return read_bytes(location).decode("utf-8")


def write_bytes(location, data):
    """Write a whole file: locally to a temporary file renamed into place after an fsync, so a reader never
    sees it half-written (an object store's put is atomic already)."""
    filesystem, path = resolve(location)
    if is_uri(location):
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(path) as stream:
            stream.write(data)
        return
    with atomic_path(path) as temporary:
        Path(temporary).write_bytes(data)


@contextlib.contextmanager
def atomic_path(path):
    """A temporary local path beside `path` to write to: once the block ends without error it is synced to disk
    and renamed to `path`, else removed. So `path` is whole or absent, never cut short (as by a full disk)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}")  # the writer creates it
    try:
        yield temporary
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(location, text):
    write_bytes(location, text.encode("utf-8"))


def list_files(location, recursive=True):
    """Locations of the files under a folder (none when it is missing), sorted. Found from a listing of files,
    not of folders: on Google Cloud Storage, pyarrow lists no folder that lacks a marker object
    (apache/arrow#35993)."""
    filesystem, path = resolve(location)
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    return sorted(uri_of(location, info.path) for info in infos if info.type == pafs.FileType.File)


def copy_to_local(location, target):
    """A local copy of the file or folder at `location` as `target` (file by file, for the reason list_files
    gives); returns `target`."""
    target = Path(target)
    filesystem, root = resolve(location)
    if kind(location) == "file":
        files = [(root, target)]
    else:
        selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
        files = [(info.path, target / info.path[len(root.rstrip("/")) + 1:])
                 for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]
    for path, local in files:
        local.parent.mkdir(parents=True, exist_ok=True)
        with filesystem.open_input_stream(path) as stream:
            local.write_bytes(stream.read())
    return target


def upload(local_folder, location):
    """Copy a local folder's files to `location`, keeping their relative paths."""
    local_folder = Path(local_folder)
    for file in sorted(p for p in local_folder.rglob("*") if p.is_file()):
        write_bytes(join(location, file.relative_to(local_folder).as_posix()), file.read_bytes())
