"""Restoring a photo archive, shared by ``acir restore`` and the Beam pipeline (no Beam here):
list the inputs, restore one photo and write its outputs, and summarise a run as
``summary.json`` and ``report.html``.

Output layout under OUT, for an input whose path relative to its input root is ``a/b.jpg``:
``a/b.png`` (or ``a/b.jpg`` with ``--format jpeg``; an intact input is copied byte for byte as
``a/b.jpg``), ``a/b.mask.png``, ``a/b.json`` (the record, written last: it marks the photo done,
so a rerun skips it), and small previews under ``report_files/`` for the contact sheet."""
from __future__ import annotations

import hashlib
import html
import io
import json
import os
import posixpath
import tempfile
import time
from dataclasses import asdict, dataclass, field

import fsspec
import numpy as np
from PIL import Image

from acir_core.errors import AcirError, BadInput, InvalidParameter, UnsupportedJpeg
from acir_core.fde import SectorCipher
from acir_core.imagefile import load_rgb
from acir_core.restore import Restoration, restore_photo

JPEG_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif")
FORMATS = ("png", "jpeg")


@dataclass(frozen=True)
class Item:
    """One input: its URI and the output name stem relative to OUT (``a/b`` for ``root/a/b.jpg``)."""

    uri: str
    rel: str


@dataclass(frozen=True)
class RestoreOptions:
    out: str
    stage: str = "auto"  # decode | sca | gca | auto (gca when torch and weights are there)
    thumbnail: str = "auto"  # auto | none | a folder of thumbnails named like the photos
    fde: str = ""  # raw sector-encrypted inputs: decrypt with this mode first
    key: bytes = field(default=b"", repr=False)
    sector_size: int = 512
    format: str = "png"
    device: str = "cpu"
    weights: str = ""  # GCA weights ('' = the packaged ones)
    previews: bool = True

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidParameter(f"format must be png or jpeg, got {self.format!r}")
        if self.stage not in ("auto", "decode", "sca", "gca"):
            raise InvalidParameter(f"stage must be auto, decode, sca or gca, got {self.stage!r}")


# ----------------------------------------------------------------------------- inputs

def _is_jpeg_name(path: str) -> bool:
    return path.lower().endswith(JPEG_EXTENSIONS)


def list_inputs(specs: list[str], any_extension: bool = False) -> list[Item]:
    """Files, folders (recursive: the JPEG files in them, or every file with ``any_extension``,
    for raw encrypted images), globs and fsspec URLs, in a stable order, without duplicates.
    A spec that matches nothing is an error naming it."""
    items: dict[str, Item] = {}
    for spec in specs:
        fs, _, paths = fsspec.get_fs_token_paths(spec)
        protocol = "" if "://" not in spec else spec.split("://", 1)[0] + "://"
        if not paths or not any(fs.exists(p) for p in paths):
            raise BadInput("no such file, folder or matching files", source=spec)
        for p in sorted(paths):
            if fs.isdir(p):
                root = p.rstrip("/")
                for f in sorted(fs.find(root)):
                    if any_extension or _is_jpeg_name(f):
                        rel = posixpath.relpath(f, root)
                        uri = protocol + f if protocol else f
                        items.setdefault(uri, Item(uri, posixpath.splitext(rel)[0]))
            else:
                uri = protocol + p if protocol else p
                items.setdefault(uri, Item(uri, posixpath.splitext(posixpath.basename(p))[0]))
    rels: dict[str, int] = {}
    out = []
    for it in items.values():  # two inputs with one name (from different roots) must not collide
        n = rels.get(it.rel, 0)
        rels[it.rel] = n + 1
        out.append(it if n == 0 else Item(it.uri, f"{it.rel}~{n}"))
    return out


# ----------------------------------------------------------------------------- writing

def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}"


def put_atomic(path: str, data: bytes) -> None:
    """Write through a temporary name and a rename on local disks; object stores (gs://, memory://)
    make a whole object appear at once anyway."""
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    parent = posixpath.dirname(p)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        fs.pipe_file(p, data)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(p)}.", suffix=".part", dir=parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def _jpeg(rgb: np.ndarray, exif: bytes | None, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    kw = {"exif": exif} if exif else {}
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=0, **kw)
    return buf.getvalue()


def _preview(rgb: np.ndarray, width: int = 320) -> bytes:
    im = Image.fromarray(rgb)
    im.thumbnail((width, width))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _exif_of(data: bytes) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.info.get("exif")
    except Exception:  # a damaged header: no EXIF to keep
        return None


def record_path(opts: RestoreOptions, item: Item) -> str:
    return _join(opts.out, f"{item.rel}.json")


def done_record(opts: RestoreOptions, item: Item, data_sha: str) -> dict | None:
    """The record of an earlier run for this input, if it finished and the input is unchanged."""
    path = record_path(opts, item)
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    if not fs.exists(p):
        return None
    try:
        rec = json.loads(fs.cat_file(p))
    except (ValueError, OSError):
        return None
    return rec if rec.get("input_sha256") == data_sha and rec.get("status") in ("clean", "restored") else None


def read_bytes(uri: str) -> bytes:
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


def external_thumbnail(folder: str, item: Item) -> np.ndarray | None:
    """A thumbnail named like the photo (any image extension) in ``folder``; None if absent."""
    fs, _, (root,) = fsspec.get_fs_token_paths(folder)
    stem = posixpath.basename(item.rel.split("~")[0])
    for cand in sorted(fs.glob(f"{root.rstrip('/')}/{stem}.*")):
        return load_rgb(fs.cat_file(cand), cand).rgb
    return None


# ----------------------------------------------------------------------------- one photo

def prepare(item: Item, opts: RestoreOptions, stage: str,
            data: bytes | None = None) -> tuple[dict, Restoration | None, bytes]:
    """Read (unless ``data`` has the input's bytes already) and decrypt one input and run the
    network-free stages. Returns the record so far, the restoration (None when skipped or
    failed: the record says why) and the JPEG bytes."""
    t0 = time.perf_counter()
    rec: dict = {"input": item.uri, "name": item.rel}
    try:
        if data is None:
            data = read_bytes(item.uri)
        rec["input_sha256"] = hashlib.sha256(data).hexdigest()
        if opts.fde:
            data = SectorCipher(opts.fde, opts.key, opts.sector_size).decrypt(
                data[: len(data) // opts.sector_size * opts.sector_size])
        thumb = "auto"
        if opts.thumbnail == "none":
            thumb = None
        elif opts.thumbnail != "auto":
            found = external_thumbnail(opts.thumbnail, item)
            thumb = found if found is not None else "auto"
        r = restore_photo(data, item.uri, "sca" if stage == "gca" else stage, thumb)
    except UnsupportedJpeg as e:
        # kept, not dropped: a copy goes to skipped/ (a standard decoder may still open it)
        name = f"skipped/{item.rel}{posixpath.splitext(item.uri)[1]}"
        put_atomic(_join(opts.out, name), data)
        rec.update(status="skipped", reason=e.reason, seconds=time.perf_counter() - t0, outputs={"copy": name})
        return rec, None, b""
    except (AcirError, InvalidParameter) as e:
        rec.update(status="failed", reason=getattr(e, "reason", str(e)), seconds=time.perf_counter() - t0)
        return rec, None, b""
    rec.update({k: v for k, v in r.record.items() if k != "source"})
    return rec, r, data


def finish(item: Item, opts: RestoreOptions, rec: dict, r: Restoration | None, data: bytes,
           gca_rgb: np.ndarray | None = None, gca_seconds: float = 0.0) -> dict:
    """Write the outputs of one photo (image, mask, previews, then the record) and return the record."""
    if r is None:
        put_atomic(record_path(opts, item), json.dumps(rec, indent=1).encode())
        return rec
    ext = posixpath.splitext(item.uri)[1] or ".jpg"
    outputs = {}
    if r.status == "clean":
        if opts.fde:
            ext = ".jpg"
        outputs["image"] = f"{item.rel}{ext}"
        put_atomic(_join(opts.out, outputs["image"]), data)  # byte for byte: never re-encoded
        final = r.rgb
    else:
        final = gca_rgb if gca_rgb is not None else r.rgb
        if gca_rgb is not None:
            rec["stage"] = "gca"
            rec["timings"]["gca"] = gca_seconds
        image_ext = ".png" if opts.format == "png" else (ext if ext.lower() in JPEG_EXTENSIONS else ".jpg")
        outputs["image"] = f"{item.rel}{image_ext}"
        blob = _png(final) if opts.format == "png" else _jpeg(final, _exif_of(data))
        put_atomic(_join(opts.out, outputs["image"]), blob)
        outputs["mask"] = f"{item.rel}.mask.png"
        put_atomic(_join(opts.out, outputs["mask"]), _png((r.mask * np.uint8(255)).astype(np.uint8)))
    if opts.previews:
        before = load_rgb(data, item.uri).rgb
        prev = {"before": before, "after": final, "mask": (r.mask * np.uint8(255)).astype(np.uint8)}
        if r.thumb_up is not None:
            prev["thumbnail"] = r.thumb_up
        for k, img in prev.items():
            outputs[f"preview_{k}"] = f"report_files/{item.rel}.{k}.jpg"
            put_atomic(_join(opts.out, outputs[f"preview_{k}"]), _preview(img))
    rec["outputs"] = outputs
    put_atomic(record_path(opts, item), json.dumps(rec, indent=1).encode())  # last: marks it done
    return rec


# ----------------------------------------------------------------------------- the run

@dataclass
class Summary:
    total: int = 0
    restored: int = 0
    clean: int = 0
    skipped: int = 0
    failed: int = 0
    resumed: int = 0
    seconds: float = 0.0
    stage_counts: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    skips: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def summarise(records: list[dict], seconds: float, resumed: int = 0) -> Summary:
    s = Summary(total=len(records), seconds=seconds, resumed=resumed)
    for r in records:
        st = r.get("status")
        if st == "restored":
            s.restored += 1
            s.stage_counts[r.get("stage", "?")] = s.stage_counts.get(r.get("stage", "?"), 0) + 1
        elif st == "clean":
            s.clean += 1
        elif st == "skipped":
            s.skipped += 1
            s.skips.append({"input": r["input"], "reason": r.get("reason", "")})
        else:
            s.failed += 1
            s.failures.append({"input": r["input"], "reason": r.get("reason", "")})
    return s


def write_run_outputs(opts: RestoreOptions, records: list[dict], summary: Summary) -> None:
    """summary.json (counts, failures, skipped inputs with reasons, every record), skipped.txt and
    the contact sheet report.html."""
    doc = summary.to_dict() | {"records": sorted(records, key=lambda r: r.get("name", ""))}
    put_atomic(_join(opts.out, "summary.json"), json.dumps(doc, indent=1).encode())
    skipped = "".join(f"{x['input']}\t{x['reason']}\n" for x in summary.skips)
    put_atomic(_join(opts.out, "skipped.txt"), skipped.encode())
    put_atomic(_join(opts.out, "report.html"), report_html(records, summary).encode())


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.4em} .counts span{margin-right:1.2em}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}
th button{font:inherit;background:none;border:0;cursor:pointer;text-decoration:underline}
img{max-width:240px;max-height:160px;display:block;background:#eee}
.restored{color:#0a5} .clean{color:#06c} .skipped{color:#a60} .failed{color:#c00}
td.num{font-variant-numeric:tabular-nums;text-align:right} td:first-child{min-width:14em}
"""

_SCRIPT = """
function sortBy(key, numeric){
  const body=document.querySelector('#photos tbody');
  const rows=[...body.rows];
  const dir=body.dataset.sort===key&&body.dataset.dir==='desc'?'asc':'desc';
  rows.sort((a,b)=>{const x=a.dataset[key],y=b.dataset[key];
    const c=numeric?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);return dir==='asc'?c:-c;});
  rows.forEach(r=>body.appendChild(r));body.dataset.sort=key;body.dataset.dir=dir;
}
// report.html#sort=name (or damage, resyncs, status; add -asc) opens the sheet sorted that way
document.addEventListener('DOMContentLoaded',()=>{
  const m=location.hash.match(/sort=(name|damage|resyncs|status)(-asc)?/);
  if(!m)return;
  const body=document.querySelector('#photos tbody');
  body.dataset.sort=m[1];body.dataset.dir=m[2]?'desc':'asc';
  sortBy(m[1],m[1]==='damage'||m[1]==='resyncs');
});
"""


def report_html(records: list[dict], summary: Summary) -> str:
    """A self-contained contact sheet: thumbnail / before / after / mask per photo, sortable."""
    def img(rec: dict, key: str) -> str:
        p = rec.get("outputs", {}).get(f"preview_{key}")
        return f'<img loading="lazy" src="{html.escape(p)}" alt="{key}">' if p else "—"

    rows = []
    for r in sorted(records, key=lambda r: -float(r.get("damaged_fraction", 0) or 0)):
        dmg = float(r.get("damaged_fraction", 0) or 0)
        status = r.get("status", "failed")
        note = html.escape(r.get("reason", "") or f"stage {r.get('stage', '')}, thumbnail {r.get('thumbnail', '')}")
        rows.append(
            f'<tr data-name="{html.escape(r.get("name", ""))}" data-damage="{dmg:.6f}" '
            f'data-resyncs="{int(r.get("resyncs", 0) or 0)}" data-status="{status}">'
            f'<td>{html.escape(r.get("name", ""))}<br><small>{note}</small></td>'
            f'<td class="{status}">{status}</td><td class="num">{100 * dmg:.2f}%</td>'
            f'<td class="num">{int(r.get("resyncs", 0) or 0)}</td>'
            f'<td>{img(r, "thumbnail")}</td><td>{img(r, "before")}</td><td>{img(r, "after")}</td>'
            f'<td>{img(r, "mask")}</td></tr>')
    s = summary
    counts = (f'<span>{s.total} photos</span><span class="restored">{s.restored} restored</span>'
              f'<span class="clean">{s.clean} intact (copied)</span><span class="skipped">{s.skipped} skipped</span>'
              f'<span class="failed">{s.failed} failed</span><span>{s.seconds:.1f} s</span>')
    head = ('<tr><th><button onclick="sortBy(\'name\',false)">photo</button></th>'
            '<th><button onclick="sortBy(\'status\',false)">status</button></th>'
            '<th><button onclick="sortBy(\'damage\',true)">damaged</button></th>'
            '<th><button onclick="sortBy(\'resyncs\',true)">resyncs</button></th>'
            '<th>thumbnail</th><th>before</th><th>after</th><th>mask</th></tr>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>acir restore report</title>'
            f'<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body><h1>acir restore report</h1>'
            f'<p class="counts">{counts}</p><table id="photos"><thead>{head}</thead>'
            f'<tbody data-sort="damage" data-dir="desc">{"".join(rows)}</tbody></table></body></html>')


def prior_record(opts: RestoreOptions, item: Item) -> tuple[dict | None, bytes | None]:
    """The finished record of an earlier run for this input (marked ``resumed``), or None, and
    the input's bytes (None if unreadable), so the caller need not read them again."""
    try:
        data = read_bytes(item.uri)
    except AcirError:
        return None, None
    prior = done_record(opts, item, hashlib.sha256(data).hexdigest())
    return (prior | {"resumed": True} if prior is not None else None), data


def apply_gca(gca, rec: dict, r: Restoration | None) -> tuple[np.ndarray | None, float]:
    """Run the network (a callable Restoration -> RGB, or None) where it applies; notes in
    ``rec`` why not when the photo has no thumbnail. Returns the image (or None) and seconds."""
    if gca is None or r is None or r.status != "restored":
        return None, 0.0
    if r.thumb_up is None:
        rec["note"] = "no thumbnail: GCA needs one, kept aware SCA + inpainting"
        return None, 0.0
    t = time.perf_counter()
    rgb = gca(r)
    return rgb, time.perf_counter() - t


def resolve_stage(stage: str, weights: str | None) -> str:
    """auto -> gca when torch imports and weights exist, else sca; gca without them is an error."""
    if stage not in ("auto", "gca"):
        return stage
    try:
        from training.infer import gca_available
    except ImportError:
        if stage == "gca":
            raise InvalidParameter("--stage gca needs PyTorch: pip install 'acir[train]'") from None
        return "sca"
    if gca_available(weights or None):
        return "gca"
    if stage == "gca":
        raise InvalidParameter("--stage gca: no GCA weights found (pass --weights FILE)")
    return "sca"


def run_item(item: Item, opts: RestoreOptions, stage: str, gca=None) -> dict:
    """Everything for one input, resuming: an input whose record says it was done (and whose bytes
    have not changed since) is not redone. ``gca``: a callable Restoration -> RGB array, used
    for stage "gca" where the photo has a thumbnail. Failures become records, never exceptions."""
    t0 = time.perf_counter()
    prior, data = prior_record(opts, item)
    if prior is not None:
        return prior
    rec, r, data = prepare(item, opts, stage, data)
    gca_rgb, gca_s = apply_gca(gca if stage == "gca" else None, rec, r)
    rec["seconds"] = time.perf_counter() - t0
    try:
        rec = finish(item, opts, rec, r, data, gca_rgb, gca_s)
    except AcirError as e:
        rec.update(status="failed", reason=e.reason)
    return rec


def clean_partials(out: str) -> int:
    """Remove temporary ``.*.part`` files an interrupted local run may have left. Returns how many."""
    fs, _, (root,) = fsspec.get_fs_token_paths(out)
    if not fs.exists(root):
        return 0
    stale = [p for p in fs.find(root) if posixpath.basename(p).startswith(".") and p.endswith(".part")]
    for p in stale:
        fs.rm_file(p)
    return len(stale)
