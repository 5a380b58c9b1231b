"""Finding and reading inputs: the one lister behind ``acir restore``, ``acir generate`` and the
Beam pipelines, and the one reader whose errors name the file and the reason.

Paths go through fsspec (local, ``gs://``, ``memory://``). Output names are chosen here, once,
so that no two inputs of a run can ever write to the same output name."""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field

import fsspec

from acir_core.errors import BadInput

JPEG_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif")
IMAGE_EXTENSIONS = JPEG_EXTENSIONS + (".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass(frozen=True, kw_only=True)
class Item:
    """One input: its URI, and ``name``, the output stem relative to the run's output folder
    (``a/b.jpg`` for ``root/a/b.jpg``: the input's relative path keeps its extension, so ``x.jpg``,
    ``x.JPG`` and ``x.png`` never share outputs)."""

    uri: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Listing:
    """What a set of input specs matched: the inputs, and what was left out with the reason."""

    items: list[Item] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def check_matched(self) -> None:
        """Raise ``BadInput`` naming the first spec that matched nothing."""
        if self.unmatched:
            raise BadInput("no such file, folder or matching files", source=self.unmatched[0])


def _protocol(spec: str) -> str:
    return spec.split("://", 1)[0] + "://" if "://" in spec else ""


def _inside(path: str, folder: str | None) -> bool:
    return bool(folder) and (path == folder or path.startswith(folder.rstrip("/") + "/"))


_GLOB = re.compile(r"[*?\[]")


def _locate(spec: str):
    """(filesystem, path) of a spec; local paths resolved (``..``, links), so one file is one input."""
    fs, path = fsspec.core.url_to_fs(spec)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    return fs, (os.path.realpath(path) if local and not _GLOB.search(path) else path.rstrip("/") or "/"), local


def _matches(fs, path: str) -> tuple[str, list[str]]:
    """(root the names are relative to, matching paths) of a plain path or a glob."""
    m = _GLOB.search(path)
    if not m:
        return posixpath.dirname(path), [path] if fs.exists(path) else []
    root = posixpath.dirname(path[: m.start()])
    return root, sorted(fs.glob(path))


def list_inputs(specs: list[str], *, extensions: tuple[str, ...] | None = JPEG_EXTENSIONS,
                exclude: str | None = None) -> Listing:
    """Files, folders (searched recursively for files with ``extensions``; None: every file),
    globs (``*``, ``?``, ``[...]``, ``**``; files they match are filtered like a folder's, folders
    searched) and fsspec URLs, in a stable order, without duplicates; specs that match nothing are
    listed in ``unmatched``. Everything in ``exclude`` (the run's output folder, never read back
    as input) and what a folder holds besides is left out; ``left_out`` says why."""
    items: dict[str, Item] = {}
    left_out: list[tuple[str, str]] = []
    unmatched: list[str] = []
    ex = _locate(exclude)[1] if exclude else None
    wanted = "not a JPEG file name (" + ", ".join(extensions or ()) + ")"
    for spec in specs:
        try:
            fs, path, local = _locate(spec)
            root, paths = _matches(fs, path)
        except (ValueError, OSError):
            root, paths = "", []
        if not paths:
            unmatched.append(spec)
            continue
        protocol = "" if local else _protocol(spec)
        globbed = bool(_GLOB.search(path))
        skipped_out = 0
        for p in paths:
            p = os.path.realpath(p) if local else p
            if _inside(p, ex):
                skipped_out += 1
                continue
            if fs.isdir(p):
                base = p.rstrip("/")
                files = [(f, posixpath.relpath(f, root if globbed else base)) for f in sorted(fs.find(base))]
            else:
                files = [(p, posixpath.relpath(p, root) if globbed else posixpath.basename(p))]
            for f, name in files:
                if _inside(f, ex):
                    skipped_out += 1
                elif extensions is None or f.lower().endswith(extensions) or not (globbed or fs.isdir(p)):
                    items.setdefault(protocol + f, Item(uri=protocol + f, name=name))
                else:
                    left_out.append((protocol + f, wanted))
        if skipped_out:
            left_out.append(((protocol + ex) if ex else spec,
                             f"the output folder: its {skipped_out} files are not read as inputs"))
    return Listing(items=_distinct_names(list(items.values())), left_out=left_out, unmatched=unmatched)


def free_name(name: str, taken: set[str], usable=lambda candidate: True) -> str:
    """``name``, else ``name~1``, ``name~2``, ...: the first that is not in ``taken`` (lower-case
    names: case-insensitive file systems tell no case apart) and that ``usable`` accepts."""
    candidate, n = name, 0
    while candidate.lower() in taken or not usable(candidate):
        n += 1
        candidate = f"{name}~{n}"
    return candidate


def _distinct_names(items: list[Item]) -> list[Item]:
    """Two inputs with one relative name (from different roots) get ``~1``, ``~2``."""
    taken: set[str] = set()
    out = []
    for it in items:
        name = free_name(it.name, taken)
        taken.add(name.lower())
        out.append(it if name == it.name else Item(uri=it.uri, name=name))
    return out


def read_bytes(uri: str) -> bytes:
    """The bytes of an input (any fsspec URL), or a ``BadInput`` that says why not."""
    try:
        with fsspec.open(uri, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise BadInput("no such file", source=uri) from None
    except IsADirectoryError:
        raise BadInput("is a directory, not a file", source=uri) from None
    except PermissionError:
        raise BadInput("permission denied", source=uri) from None
    except OSError as e:
        raise BadInput(f"cannot be read ({e.strerror or e})", source=uri) from None


def read_key_file(path: str) -> bytes:
    """A key from a file: raw binary key bytes, or the key as hex text (whitespace ignored). Hex
    is taken only when the whole file is hex digits of a key's length (16, 24, 32 or 64 bytes)."""
    raw = read_bytes(path)
    try:
        decoded = bytes.fromhex(raw.strip().decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return raw
    return decoded if len(decoded) in (16, 24, 32, 64) else raw
