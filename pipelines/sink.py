"""Writing shards ourselves, through fsspec: deterministic bytes on every runner.

Rows are spread over shards by a hash of their ``sample_id`` and each shard is written sorted by
it, so a rerun with the same parameters gives byte-identical files whatever the worker order.
Beam's ``WriteToParquet`` (the default) finalises through side inputs, which Beam's DaskRunner
does not execute, so on Dask this sink is used instead.
"""
from __future__ import annotations

import apache_beam as beam
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.schema import SCHEMA
from pipelines.stages import stable_int

ROWS_PER_GROUP = 4  # row groups of a few images keep readers streaming


def open_for_write(path: str, mode: str = "wb"):
    """fsspec.open for writing, creating the parent folder where the filesystem has folders."""
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    parent = p.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    return fs.open(p, mode)


class WriteShard(beam.DoFn):
    def __init__(self, output: str, shards: int):
        self.output = output.rstrip("/")
        self.shards = shards

    def process(self, element):
        shard, rows = element
        rows = sorted(rows, key=lambda r: r["sample_id"])
        path = f"{self.output}/shard-{shard:05d}-of-{self.shards:05d}.parquet"
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        with open_for_write(path) as f:
            pq.write_table(table, f, compression="zstd", row_group_size=ROWS_PER_GROUP)
        yield path


class WriteAllShards(beam.DoFn):
    def __init__(self, output: str, shards: int):
        self.rows = WriteShard(output, shards)
        self.dead = f"{output}/dead_letter.jsonl"

    def process(self, element):
        key, items = element
        if key < 0:
            with open_for_write(self.dead, "w") as f:
                for line in sorted(str(i) for i in items):
                    f.write(line + "\n")
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
