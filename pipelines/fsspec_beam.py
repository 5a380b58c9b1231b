"""Beam FileSystem for every URL scheme fsspec knows and Beam does not (``memory://`` in tests,
and e.g. ``abfs://``, ``ssh://``), so Beam's own file sinks (``WriteToParquet``, ``WriteToText``)
write through fsspec there. Beam picks a FileSystem by scheme from its subclasses, so importing
this module registers it. Local paths and ``gs://`` keep Beam's native filesystems.
"""
from __future__ import annotations

import posixpath

import fsspec
from apache_beam.io.filesystem import BeamIOError, CompressionTypes, FileMetadata, FileSystem


class FsspecMemoryFileSystem(FileSystem):
    """fsspec's in-memory filesystem under Beam (one per process: in-process runners only)."""

    SCHEME = "memory"

    @classmethod
    def scheme(cls) -> str:
        return cls.SCHEME

    def _fs(self):
        return fsspec.filesystem(self.SCHEME)

    def _strip(self, path: str) -> str:
        prefix = f"{self.SCHEME}://"
        return path[len(prefix):] if path.startswith(prefix) else path

    def _url(self, path: str) -> str:
        return f"{self.SCHEME}://{path.lstrip('/')}" if not path.startswith(f"{self.SCHEME}://") else path

    def join(self, basepath: str, *paths: str) -> str:
        return self._url(posixpath.join(self._strip(basepath), *paths))

    def split(self, path: str) -> tuple[str, str]:
        head, tail = posixpath.split(self._strip(path))
        return self._url(head), tail

    def mkdirs(self, path: str) -> None:
        self._fs().makedirs(self._strip(path), exist_ok=True)

    def has_dirs(self) -> bool:
        return True

    def _list(self, dir_or_prefix: str):
        fs = self._fs()
        base = self._strip(dir_or_prefix)
        try:
            found = fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for name, info in found.items():
            yield FileMetadata(self._url(name), int(info.get("size") or 0))

    def _open(self, path: str, mode: str, compression_type: str):
        raw = self._fs().open(self._strip(path), mode)
        if compression_type == CompressionTypes.AUTO:
            compression_type = CompressionTypes.detect_compression_type(path)
        if compression_type == CompressionTypes.UNCOMPRESSED:
            return raw
        from apache_beam.io.filesystem import CompressedFile

        return CompressedFile(raw, compression_type=compression_type)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        parent = posixpath.dirname(self._strip(path))
        if parent:
            self._fs().makedirs(parent, exist_ok=True)
        return self._open(path, "wb", compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return self._open(path, "rb", compression_type)

    def copy(self, source_file_names, destination_file_names):
        fs, errors = self._fs(), {}
        for src, dst in zip(source_file_names, destination_file_names):
            try:
                fs.copy(self._strip(src), self._strip(dst), recursive=True)
            except Exception as exc:  # reported the Beam way
                errors[(src, dst)] = exc
        if errors:
            raise BeamIOError("copy failed", errors)

    def rename(self, source_file_names, destination_file_names):
        fs, errors = self._fs(), {}
        for src, dst in zip(source_file_names, destination_file_names):
            try:
                fs.mv(self._strip(src), self._strip(dst), recursive=True)
            except Exception as exc:
                errors[(src, dst)] = exc
        if errors:
            raise BeamIOError("rename failed", errors)

    def exists(self, path: str) -> bool:
        return self._fs().exists(self._strip(path))

    def size(self, path: str) -> int:
        return int(self._fs().size(self._strip(path)))

    def last_updated(self, path: str) -> float:
        return 0.0

    def checksum(self, path: str) -> str:
        return str(self.size(path))

    def metadata(self, path: str) -> FileMetadata:
        return FileMetadata(path, self.size(path), 0.0)

    def delete(self, paths) -> None:
        fs, errors = self._fs(), {}
        for p in paths:
            try:
                fs.rm(self._strip(p), recursive=True)
            except FileNotFoundError:
                pass
            except Exception as exc:
                errors[p] = exc
        if errors:
            raise BeamIOError("delete failed", errors)
