"""prepare(): any MIDI corpus -> clean ABC -> dedup -> per-tune split -> vocab -> chunks -> token shards.

Ray Data does the per-file work (read bytes, midi2abc, cleaning) and Ray tasks the per-tune work
(tokenizing and chunking; see token_stage.py). The driver streams the results: it keeps one small record
per input file (no ABC) and writes each distinct tune's ABC once to a scratch Parquet file, so dedup and
split need only hashes, and only distinct tunes are tokenized, once each.
"""

import hashlib
import json
import logging
import shutil
import time
from contextlib import closing
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from preprocessing.abc_tokens import TOKENIZER_VERSION, Vocabulary
from preprocessing.convert import CONVERSION_VERSION, convert_batch
from preprocessing.inputs import file_md5s, ray_path, resolve_inputs
from preprocessing.near_twins import groups, tune_signatures, twin_figures
from preprocessing.parallel import block_count
from preprocessing.progress import progress_bar
from preprocessing.render import render_abc_items
from preprocessing.settings import Settings
from preprocessing.shards import DTYPE, SPLITS, ShardWriter, write_meta
from preprocessing.storage import atomic_path, bucket_filesystem, write_text
from preprocessing.token_stage import encoded_tunes, tokenize_tunes
from preprocessing.tune_split import SPLIT_VERSION, group_splits, split_of
from preprocessing.versions import CONVERTER, versions

RUN_FILE = "run.json"
WORK_DIR = "work"
OUTPUTS = ("manifest.parquet", "abc", "tokens", "meta.json", "summary.json", WORK_DIR, RUN_FILE)
TUNES_PER_WRITE = 10_000  # rows of abc/ written at a time
TUNE_SCHEMA = pa.schema([("tune_md5", pa.string()), ("abc", pa.large_string())])  # large: Lakh's ABC passes 2 GB


class DifferentRunError(FileExistsError):
    """--out holds a preprocessing run of other inputs, settings, conversion or tokenizer version, or one made by
    another midi2abc or symusic, or of inputs changed since (differing: run.json's keys, those versions, or the
    changed inputs)."""

    def __init__(self, out, differing):
        super().__init__(f"--out {out} holds a preprocessing run with different {', '.join(differing)}; "
                         f"pass --overwrite to replace it, or choose another --out")
        self.differing = differing


class TooFewTunesError(RuntimeError):
    """The inputs gave too few usable tunes for a train, a val and a test split; manifest.parquet says why."""


def prepare(inputs, out_dir, **settings):
    """Prepare a data folder from inputs (paths, globs, list files, URIs, .abc books, "music21").

    Returns the summary dict (also saved as summary.json). An existing out_dir from the same inputs
    and settings is resumed (or returned as is when complete); any other refuses unless overwrite=True.
    """
    settings = Settings.from_kwargs(**settings)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; name a folder (new, empty, or of an earlier run)")
    started = time.time()
    items = resolve_inputs(inputs)
    run = {"inputs": [str(i) for i in inputs], "files": len(items),
           "files_sha256": hashlib.sha256("\n".join(i["source"] for i in items).encode()).hexdigest(),
           "settings": settings.output_affecting(), "conversion_version": CONVERSION_VERSION,
           "tokenizer_version": TOKENIZER_VERSION, "split_version": SPLIT_VERSION, "versions": versions()}
    finished = claim_out_dir(out, run, items, settings)
    if finished is not None:
        return finished
    say = (lambda *a: None) if settings.quiet else print
    say(f"preprocessing: {len(items)} inputs -> {out}")
    started_ray = connect_ray(settings)
    try:
        records = converted_records(items, out / WORK_DIR, settings, say)
        converted = time.time()
        md5s, signatures = tune_signatures(out / WORK_DIR / "tunes.parquet", settings.quiet)
        group_of = groups(md5s, signatures)
        try:
            manifest = assign_status_and_split(records, settings.split, group_of)
        except ValueError as error:  # too few tunes to split
            raise too_few_tunes(out, records, error) from None
        near_twins = near_twin_figures(md5s, signatures, group_of, manifest, settings.split)
        grouped = time.time()
        tunes, abc = kept_tunes(manifest, out / WORK_DIR)
        tokenized = out / WORK_DIR / "tokenized.parquet"
        train_counts = tokenize_tunes(abc, tunes.split == "train", tokenized, settings.chunk_tokens, settings.quiet)
        vocab = Vocabulary.build(train_counts, settings.min_count, settings.max_vocab)
    finally:
        if started_ray:
            ray.shutdown()
    splits = write_shards(out, tunes, vocab, tokenized)
    write_tables(out, manifest, tunes, abc)
    write_meta(out, meta_of(vocab, splits, settings, run))
    seconds = {"convert": converted - started, "near_twins": grouped - converted, "tokens": time.time() - grouped}
    summary = summarize(out, manifest, tunes, splits, vocab, seconds, near_twins)
    write_text(out / "summary.json", json.dumps(summary, indent=1))
    shutil.rmtree(out / WORK_DIR)
    say(format_summary(summary))
    return summary


def claim_out_dir(out, run, items, settings):
    """None to go on (new or resumed run), or the saved summary when this same run already finished."""
    if out.exists() and any(out.iterdir()):
        previous = read_json(out / RUN_FILE)
        if previous is None:
            raise FileExistsError(f"--out {out} is not empty and holds no preprocessing run ({RUN_FILE}); "
                                  f"choose a new or empty folder")
        if settings.overwrite:
            for name in OUTPUTS:
                path = out / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        elif differing := run_differences(previous, run) or changed_inputs(out, items, settings.verify):
            raise DifferentRunError(out, differing)
        elif (summary := read_json(out / "summary.json")) is not None:
            if not settings.quiet:
                print(f"{out} already holds this run, complete; nothing to do")
            return summary
        elif not settings.quiet:
            print(f"resuming the unfinished run in {out}")
    write_text(out / RUN_FILE, json.dumps(run, indent=1))
    return None


def read_json(path):
    """The file's JSON, or None when it is missing or not whole."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def changed_inputs(out, items, verify):
    """[what changed] when an input differs from what the earlier run in out converted, else []. A file is
    judged by its size and modification time, or with verify by the md5 of its bytes; an ABC tune by its text."""
    if (out / "manifest.parquet").exists():
        before = pd.read_parquet(out / "manifest.parquet").set_index("source")
    elif (out / WORK_DIR / "converted.done").exists():
        before = pd.read_parquet(out / WORK_DIR / "records.parquet").set_index("source")
    else:  # not converted yet: the resumed run reads every input afresh
        return []
    recorded = before.get("stamp", before.md5).to_dict()  # a run that recorded no stamps: its files changed
    now = {item["source"]: item["stamp"] for item in items}
    if verify:
        midi = [item["source"] for item in items if item["kind"] == "midi"]
        recorded.update(before.md5[midi])
        now.update(zip(midi, file_md5s([item for item in items if item["kind"] == "midi"])))
    changed = [source for source, stamp in now.items() if recorded.get(source) != stamp]
    if not changed:
        return []
    more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
    how = "their bytes" if verify else "size or modification time; --verify compares their bytes"
    return [f"input contents ({changed[0]}{more} changed since, by {how})"]


def run_differences(previous, run):
    """The keys of run.json that differ; of its versions only the converter's count (another torch or Ray
    prepares the same data), named with both versions."""
    differing = [key for key in run if key != "versions" and previous.get(key) != run[key]]
    before = previous.get("versions", {})
    differing += [f"{name} version ({before.get(name, 'unrecorded')} there, {run['versions'][name]} here)"
                  for name in CONVERTER if before.get(name) != run["versions"][name]]
    return sorted(differing)


def converted_records(items, work, settings, say):
    """One record per item (no ABC); each distinct kept tune's ABC goes once to work/tunes.parquet.

    Saved in work/ with a marker, so an interrupted run resumes after the conversion."""
    records_path, done = work / "records.parquet", work / "converted.done"
    if done.exists():
        say("conversion already done; reusing it")
        return pd.read_parquet(records_path)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    midi_items, rows = render_abc_items(items, work / "rendered", settings.timeout)
    source_of = {ray_path(item["location"]): item["source"] for item in midi_items}
    parts, seen = [pd.DataFrame(rows)], set()
    # No dictionary encoding: every ABC text here is distinct, so building the dictionary is wasted driver time.
    with pq.ParquetWriter(work / "tunes.parquet", TUNE_SCHEMA, use_dictionary=False) as tunes_file, \
            progress_bar(len(midi_items), "converting", "file", settings.quiet or not midi_items) as bar:
        for batch in converted_batches(midi_items, settings):
            new = [i for i, (status, md5) in enumerate(zip(batch["status"].to_pylist(),
                                                           batch["tune_md5"].to_pylist()))
                   if status == "ok" and md5 not in seen and not seen.add(md5)]
            if new:
                tunes_file.write_table(batch.select(["tune_md5", "abc"]).take(new).cast(TUNE_SCHEMA))
            part = batch.drop_columns(["abc"]).to_pandas()
            part.insert(0, "source", [source_of.get(path) for path in part.pop("path")])
            parts.append(part)
            bar.set_postfix_str(f"{len(seen)} distinct tunes", refresh=False)
            bar.update(len(part))
    records = pd.concat(parts, ignore_index=True).sort_values("source", ignore_index=True)
    records["stamp"] = records.source.map({item["source"]: item["stamp"] for item in items})
    if len(records) != len(items) or records.source.isna().any():
        raise RuntimeError(f"{len(items)} inputs gave {len(records)} records: a file went missing in Ray")
    records.to_parquet(records_path)
    done.touch()
    return records


def connect_ray(settings):
    """Use the running Ray if any, else start one (address, or local with num_cpus); True if started."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # progress_bar shows the conversion; Ray Data's would flood a log file
    for handler in logging.getLogger("ray.data").handlers:  # its plan and notes: to its log file, not between bars
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.ERROR)
    # Ray Data's per-operator reservations keep the conversion's one-operator pipeline from running a task
    # on every CPU.
    context.op_resource_reservation_enabled = False
    if ray.is_initialized():
        return False
    if settings.address:
        ray.init(address=settings.address, log_to_driver=False)
    else:
        ray.init(num_cpus=settings.num_cpus, include_dashboard=False, log_to_driver=False)
    return True


def converted_batches(items, settings):
    """Arrow tables of convert_batch records, in no fixed order."""
    if not items:
        return
    by_filesystem = {}
    for item in items:
        by_filesystem.setdefault(item["filesystem"], []).append(ray_path(item["location"]))
    datasets = []
    for filesystem, paths in by_filesystem.items():
        # Blocks of about batch_size files: each task has a cost of its own.
        blocks = block_count(len(paths), settings.batch_size)
        if filesystem:  # remote: Ray's reader, with its retries; the network dwarfs its cost
            remote = bucket_filesystem(filesystem)[0]
            datasets.append(ray.data.read_binary_files(paths, filesystem=remote, include_paths=True,
                                                       override_num_blocks=blocks))
        else:
            datasets.append(ray.data.from_items([{"path": path} for path in paths], override_num_blocks=blocks))
    dataset = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
    dataset = dataset.map_batches(
        convert_batch, batch_size=None, batch_format="numpy",
        fn_kwargs={"flags": settings.midi2abc_flags, "timeout": settings.timeout, "limits": settings.limits,
                   "home": ray.get_runtime_context().get_node_id()})
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")


def assign_status_and_split(records, fractions, group_of=None):
    """Duplicates (same normalised ABC) point to the first source by name; kept tunes and duplicates get their
    group (group_of: {tune md5: group}; without it, each tune is a group of its own), and kept tunes the
    split of their group."""
    manifest = records.copy()
    ok = manifest.status == "ok"
    first = manifest[ok].groupby("tune_md5").source.transform("min")
    duplicate = ok & (manifest.source != first.reindex(manifest.index))
    manifest["duplicate_of"] = ""
    manifest.loc[duplicate, "duplicate_of"] = first[duplicate[ok]]
    manifest.loc[duplicate, ["status", "reason"]] = ["duplicate", "duplicate"]
    manifest["group"] = manifest.tune_md5.map(group_of).fillna("") if group_of else manifest.tune_md5
    kept = manifest.status == "ok"
    manifest["split"] = ""
    manifest.loc[kept, "split"] = manifest.group[kept].map(group_splits(manifest.group[kept].unique(), fractions))
    return manifest


def near_twin_figures(md5s, signatures, group_of, manifest, fractions):
    """summary.json's near_twins, with the test tunes that have a near-twin in train before (each tune split by
    its own hash) and after (by its group's)."""
    split = manifest[manifest.status == "ok"].set_index("tune_md5").split
    return twin_figures(signatures, [group_of[md5] for md5 in md5s], [split_of(md5, fractions) for md5 in md5s],
                        split[md5s].tolist())


def too_few_tunes(out, records, error):
    """The error for inputs with too few usable tunes, once manifest.parquet gives each input's status."""
    manifest = assign_status_and_split(records, (1, 0, 0)).assign(split="")
    write_parquet(manifest, out / "manifest.parquet")
    reasons = ", ".join(f"{n} {r}" for r, n in manifest.reason.replace("", "ok").value_counts().sort_index().items())
    return TooFewTunesError(f"{error}. Of the {len(manifest)} inputs: {reasons} ({out / 'manifest.parquet'} "
                            f"names each input's status and reason)")


def write_parquet(frame, path):
    with atomic_path(path) as temporary:
        frame.to_parquet(temporary, index=False)


def kept_tunes(manifest, work):
    """The kept tunes, ordered by split then tune hash (a fixed, shuffled order), and their ABC texts in that
    order (OrderedTexts). The texts stay in Arrow, read once: at Lakh scale they are gigabytes, and as pandas
    and Python strings the driver would hold them three times over."""
    kept = manifest[manifest.status == "ok"].drop(columns=["status", "reason", "duplicate_of"])
    order = kept.split.map({split: i for i, split in enumerate(SPLITS)})
    kept = kept.assign(order=order).sort_values(["order", "tune_md5"], ignore_index=True).drop(columns="order")
    written = pq.read_table(work / "tunes.parquet")
    row_of = pd.Series(np.arange(written.num_rows), index=written["tune_md5"].to_pandas())
    return kept, OrderedTexts(written["abc"], row_of[kept.tune_md5].to_numpy())


class OrderedTexts:
    """A chunked Arrow column seen in another order of its rows; a slice of it is gathered when asked for.

    Never copied whole (at Lakh scale a copy is gigabytes), and each row is sliced from its own chunk: a take
    from the chunked column joins all its chunks on every call."""

    def __init__(self, column, rows):
        self.chunks, self.type = column.chunks, column.type
        starts = np.cumsum([0] + [len(chunk) for chunk in self.chunks])
        self.chunk_of = np.searchsorted(starts, rows, side="right") - 1
        self.offset = rows - starts[self.chunk_of]

    def __len__(self):
        return len(self.chunk_of)

    def __getitem__(self, part):
        rows = zip(self.chunk_of[part].tolist(), self.offset[part].tolist())
        return pa.concat_arrays([pa.array([], self.type)] + [self.chunks[c].slice(o, 1) for c, o in rows])


def write_shards(out, tunes, vocab, tokenized):
    """tokens/<split>.bin: each chunk's ids then <eot>, tunes in table order; returns meta.json's entry per split
    (tunes, chunks, notes, bars, tokens, sha256). Adds chunks/tokens/unk columns."""
    splits, chunks, tokens, unknown = {}, [], [], []
    with closing(encoded_tunes(tokenized, vocab)) as encoded:  # one pass; tunes come split by split
        for split in SPLITS:
            count = int((tunes.split == split).sum())
            with ShardWriter(out, split) as writer:
                for ids, tune_chunks, tune_unk in islice(encoded, count):
                    writer.write(ids)
                    chunks.append(tune_chunks)
                    tokens.append(len(ids))
                    unknown.append(tune_unk)
            in_split = tunes.split == split  # notes and bars: what losses per note and per bar divide by
            splits[split] = {"tunes": count, "chunks": sum(chunks[len(chunks) - count:]),
                             "notes": int(tunes.notes[in_split].sum()), "bars": int(tunes.bars[in_split].sum()),
                             **writer.entry}
    tunes["chunks"], tunes["tokens"], tunes["unk"] = chunks, tokens, unknown
    return splits


def write_tables(out, manifest, tunes, abc):
    """manifest.parquet, and abc/ with the tunes' table and their ABC (abc: OrderedTexts), written in parts."""
    write_parquet(manifest, out / "manifest.parquet")
    columns = ["source", "tune_md5", "md5", "split", "group", "notes", "bars", "voices", "chunks", "tokens", "unk"]
    table = tunes[columns].rename(columns={"md5": "file_md5"}).rename(columns={"tune_md5": "md5"})
    table = pa.Table.from_pandas(table, preserve_index=False)
    schema = table.schema.insert(3, pa.field("abc", pa.large_string()))
    with atomic_path(out / "abc" / "part-00000.parquet") as part, \
            pq.ParquetWriter(part, schema, use_dictionary=["split"]) as writer:
        for start in range(0, len(table), TUNES_PER_WRITE):
            rows = slice(start, start + TUNES_PER_WRITE)
            writer.write_table(table[rows].add_column(3, "abc", abc[rows]))


def meta_of(vocab, splits, settings, run):
    return {"conversion_version": CONVERSION_VERSION, "tokenizer_version": TOKENIZER_VERSION,
            "split_version": SPLIT_VERSION, "vocab": vocab.tokens, "vocab_size": len(vocab),
            "vocab_sha256": vocab.sha256, "eot_id": vocab.eot_id, "unk_id": vocab.unk_id,
            "dtype": np.dtype(DTYPE).name, "splits": splits, "settings": settings.output_affecting(),
            "inputs": run["inputs"], "files": run["files"], "versions": run["versions"]}


def summarize(out, manifest, tunes, splits, vocab, seconds, near_twins):
    rejected = manifest.reason[manifest.status == "rejected"].value_counts().sort_index()
    notes = tunes.notes
    return {"out_dir": str(out), "files_in": len(manifest), "manifest_rows": len(manifest),
            "ok": int((manifest.status == "ok").sum()), "duplicate": int((manifest.status == "duplicate").sum()),
            "rejected": int((manifest.status == "rejected").sum()),
            "rejected_by_reason": {k: int(v) for k, v in rejected.items()},
            "splits": {s: {"tunes": e["tunes"], "chunks": e["chunks"], "tokens": e["tokens"]}
                       for s, e in splits.items()},
            "tokens": sum(e["tokens"] for e in splits.values()), "unk_tokens": int(tunes.unk.sum()),
            "vocab_size": len(vocab),
            "notes_per_tune": {"mean": float(notes.mean()), "median": float(notes.median()),
                               "min": int(notes.min()), "max": int(notes.max())} if len(notes) else {},
            "near_twins": near_twins, "seconds": round(sum(seconds.values()), 2),
            "stage_seconds": {stage: round(value, 2) for stage, value in seconds.items()}}


def format_summary(summary):
    lines = [f"files in {summary['files_in']}: ok {summary['ok']}, duplicate {summary['duplicate']}, "
             f"rejected {summary['rejected']} {summary['rejected_by_reason']}"]
    for split, entry in summary["splits"].items():
        lines.append(f"  {split:5s} {entry['tunes']:7d} tunes {entry['chunks']:7d} chunks {entry['tokens']:10d} tokens")
    twins = summary["near_twins"]
    lines.append(f"near-twins (estimated Jaccard >= {twins['threshold']}): {twins['groups']} groups of "
                 f"{twins['tunes_in_groups']} tunes; test tunes with a near-twin in train: "
                 f"{twins['test_with_twin_in_train']['before']} of {twins['test_tunes']['before']} split tune by tune, "
                 f"{twins['test_with_twin_in_train']['after']} of {twins['test_tunes']['after']} split by group")
    lines.append(f"vocab {summary['vocab_size']}, unk tokens {summary['unk_tokens']}, "
                 f"notes per tune {summary['notes_per_tune']}, {summary['seconds']} s -> {summary['out_dir']}")
    return "\n".join(lines)
