"""Writing Parquet ourselves, through fsspec, where Beam's ``WriteToParquet`` does not serve.

Beam's ``WriteToParquet`` (the default sink) finalises through side inputs, which Beam's
DaskRunner does not execute. Two sinks of our own:

- :class:`WriteAll` (``--sink fsspec``): rows spread over ``--shards`` files by a hash of their
  ``sample_id``, each written sorted by it, so a rerun gives byte-identical files on every runner.
  Getting a shard's rows together is a shuffle of every row, images included.
- :class:`StreamRows` (``--sink stream``, the default on Dask): each bundle writes its rows as
  they come, a file per :data:`ROWS_PER_FILE`, named by a hash of the sample ids in it; no
  shuffle. On Dask a bundle is one photo's partition (or one sample's, with ``--per-sample``), so
  the files are the same on every rerun, and rows do not wait in memory for a shuffle. Written rows are
  emptied (the runner may keep the element; see :meth:`acir_engine.samples.Sample.shed`). Dead
  letters go to ``dead_letter-<hash>.jsonl`` per bundle, merged by :func:`merge_dead_letters`.
"""
from __future__ import annotations

import hashlib

import apache_beam as beam
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.schema import SCHEMA
from acir_engine.samples import stable_int

ROWS_PER_GROUP = 4  # row groups of a few images keep readers streaming
ROWS_PER_FILE = 64  # StreamRows: ~200 MB of 2K samples with the aware images


def open_for_write(path: str, mode: str = "wb"):
    """fsspec.open for writing, creating the parent folder where the filesystem has folders."""
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    parent = p.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    return fs.open(p, mode)


def write_lines(path: str, lines) -> None:
    """A text file of ``lines`` in sorted order, one per line (dead letters: the same bytes
    whatever order the workers produced them in)."""
    with open_for_write(path, "w") as f:
        f.write("".join(line + "\n" for line in sorted(lines)))


def _folder(output: str):
    """(filesystem, path) of an output folder URL."""
    fs, _, (path,) = fsspec.get_fs_token_paths(output.rstrip("/"))
    return fs, path


def write_rows(path: str, rows: list[dict]) -> str:
    """One Parquet file of ``rows`` sorted by ``sample_id`` (zstd, row groups of a few images)."""
    rows = sorted(rows, key=lambda r: r["sample_id"])
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with open_for_write(path) as f:
        pq.write_table(table, f, compression="zstd", row_group_size=ROWS_PER_GROUP)
    return path


class WriteShard(beam.DoFn):
    def __init__(self, output: str, shards: int):
        self.output = output.rstrip("/")
        self.shards = shards

    def process(self, element):
        shard, rows = element
        yield write_rows(f"{self.output}/shard-{shard:05d}-of-{self.shards:05d}.parquet", rows)


class WriteAllShards(beam.DoFn):
    def __init__(self, output: str, shards: int):
        self.rows = WriteShard(output, shards)
        self.dead = f"{output}/dead_letter.jsonl"

    def process(self, element):
        key, items = element
        if key < 0:
            write_lines(self.dead, (str(i) for i in items))
            yield self.dead
        else:
            yield from self.rows.process((key, items))


class WriteAll(beam.PTransform):
    """Rows and dead letters through one GroupByKey and one writer (key -1: the dead letters)."""

    def __init__(self, output: str, shards: int, is_dead):
        super().__init__()
        self.output, self.shards, self.is_dead = output, max(shards, 1), is_dead

    def expand(self, records):
        n, is_dead = self.shards, self.is_dead
        return (records | "KeyByShard" >> beam.Map(
                    lambda r: (-1, str(r)) if is_dead(r) else (stable_int(r["sample_id"]) % n, r))
                | "GroupShards" >> beam.GroupByKey()
                | "WriteShards" >> beam.ParDo(WriteAllShards(self.output, n)))


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]


class StreamRows(beam.DoFn):
    """Rows to ``part-<hash of their sample ids>.parquet``, :data:`ROWS_PER_FILE` at most per
    file, as a bundle goes; its dead letters to ``dead_letter-<hash>.jsonl`` when it ends."""

    def __init__(self, output: str, is_dead, rows_per_file: int = ROWS_PER_FILE):
        self.output = output.rstrip("/")
        self.is_dead = is_dead
        self.rows_per_file = max(int(rows_per_file), 1)

    def start_bundle(self):
        self.rows: list[dict] = []
        self.dead: list[str] = []

    def _flush(self) -> None:
        if self.rows:
            write_rows(f"{self.output}/part-{_digest([r['sample_id'] for r in self.rows])}.parquet", self.rows)
            for row in self.rows:
                row.clear()  # the runner may keep the element (DaskRunner: till the run ends), not its images
            self.rows = []

    def process(self, element):
        if self.is_dead(element):
            self.dead.append(str(element))
            return
        self.rows.append(element)
        if len(self.rows) >= self.rows_per_file:
            self._flush()

    def finish_bundle(self):
        self._flush()
        if self.dead:
            write_lines(f"{self.output}/dead_letter-{_digest(self.dead)}.jsonl", self.dead)
            self.dead = []


def merge_dead_letters(output: str) -> None:
    """The per-bundle dead letters of :class:`StreamRows` into one sorted ``dead_letter.jsonl``
    (run once the pipeline has finished); the parts are removed."""
    fs, path = _folder(output)
    parts = fs.glob(f"{path}/dead_letter-*.jsonl")
    if not parts:
        return
    write_lines(f"{output.rstrip('/')}/dead_letter.jsonl",
                [line for p in parts for line in fs.cat(p).decode().splitlines() if line.strip()])
    for p in parts:
        fs.rm(p)


def clear_stream_output(output: str) -> None:
    """Remove what an earlier :class:`StreamRows` run left in ``output`` (its ``part-*.parquet``
    and unmerged dead-letter parts): their names come from the sample ids, so a run with other
    photos or settings would not overwrite them and readers would mix the two."""
    fs, path = _folder(output)
    for p in fs.glob(f"{path}/part-*.parquet") + fs.glob(f"{path}/dead_letter-*.jsonl"):
        fs.rm(p)
