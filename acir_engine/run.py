"""Restoring a set of photos into an output folder, shared by ``acir restore`` and the Beam
pipeline: one photo's outputs (image, mask, previews, record), resuming, and the run's
``summary.json`` and ``report.html``.

Every output of input ``a/b.jpg`` (its path relative to the folder it was found in) is named
``a/b.jpg.<kind>.<ext>`` or ``a/b.jpg.json``: the restored image (``.restored.png`` or
``.restored.jpg``), the intact file copied byte for byte (``.intact.jpg``), a file acir could not
decode copied as it is (``.skipped.jpg``), the damage mask (``.mask.png``) and the record
(``.json``, written last: it marks the photo done, so a rerun skips it). Input names are unique
in a run, so no two outputs can share a name; previews for the contact sheet go under
``report_files/``."""
from __future__ import annotations

import hashlib
import io
import os
import json
import posixpath
import time
from dataclasses import asdict, dataclass, field, replace

import fsspec
import numpy as np
from PIL import Image

from acir_core.errors import AcirError, InvalidParameter, UnsupportedJpeg
from acir_core.graft import HeaderLost
from acir_core.fde import SectorCipher
from acir_core.imagefile import load_rgb
from acir_core.jpeg.rewrite import repaired_jpeg
from acir_core.jpeg.tables import DEFAULT_MAX_PIXELS
from acir_engine.donors import donors_for
from acir_engine.inputs import Item, free_name, read_bytes
from acir_engine.network import RESTORE_STAGES
from acir_engine.outputs import jpeg_bytes, join, mask_png, png_bytes, preview_bytes, write_atomic
from acir_engine.photo import PhotoResult, restore_photo
from acir_engine.report import report_html
from acir_engine.thumbnails import ThumbnailSpec

FORMATS = ("png", "jpeg")
DONE = ("clean", "restored", "truncated")  # statuses of a finished photo (truncated: restored, the file was cut)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How a run restores and writes. ``stage``: decode | sca | gca (resolved, not "auto");
    ``thumbnail``: a ``ThumbnailSpec`` text (auto | none | file | folder); ``fde``: decrypt
    raw sector-encrypted inputs with this mode and ``key`` first; ``weights``: GCA weights ("" =
    the packaged ones); ``memory_budget``: bytes one photo may need (0: no limit);
    ``references``: files or folders of photos whose headers may stand in for a lost one
    (``--reference``); ``donor_inputs``: the run's intact photos, offered the same way in its
    second pass over photos whose header was lost."""

    out: str
    stage: str = "sca"
    thumbnail: str = "auto"
    fde: str = ""
    key: bytes = field(default=b"", repr=False)
    sector_size: int = 512
    format: str = "png"
    device: str = "cpu"
    weights: str = ""
    previews: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    memory_budget: int = 0
    references: tuple[str, ...] = ()
    donor_inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidParameter(f"format must be png or jpeg, got {self.format!r}")
        if self.stage not in RESTORE_STAGES:
            raise InvalidParameter(f"stage must be one of {', '.join(RESTORE_STAGES)}, got {self.stage!r}")


def record_path(opts: RunOptions, item: Item) -> str:
    return join(opts.out, f"{item.name}.json")


def fingerprint(opts: RunOptions) -> dict:
    """The options that shape a photo's outputs: a record made with others is redone."""
    return {"stage": opts.stage, "format": opts.format, "thumbnail": opts.thumbnail, "fde": opts.fde,
            "key_sha256": hashlib.sha256(opts.key).hexdigest() if opts.key else "", "weights": opts.weights,
            "previews": opts.previews}


def read_record(opts: RunOptions, name: str) -> dict | None:
    """The record written for output name ``name``, or None."""
    fs, p = fsspec.core.url_to_fs(join(opts.out, f"{name}.json"))
    try:
        return json.loads(fs.cat_file(p)) if fs.exists(p) else None
    except (ValueError, OSError):
        return None


def _outputs_exist(opts: RunOptions, rec: dict) -> bool:
    for rel in rec.get("outputs", {}).values():
        fs, p = fsspec.core.url_to_fs(join(opts.out, rel))
        if not fs.exists(p):
            return False
    return True


def done_record(opts: RunOptions, item: Item, data_sha: str) -> dict | None:
    """The record of an earlier run for this input, if it finished with the same options, the
    input is unchanged and every output it lists is still there."""
    rec = read_record(opts, item.name)
    if rec is None or rec.get("input_sha256") != data_sha or rec.get("status") not in DONE:
        return None
    return rec if rec.get("options") == fingerprint(opts) and _outputs_exist(opts, rec) else None


def free_names(opts: RunOptions, items: list[Item]) -> list[Item]:
    """The items, renamed (next free ``~N``) where an earlier run into the same folder wrote a
    record of that name for another input: a second run never overwrites the first's photos."""
    taken = {it.name.lower() for it in items}
    out = []
    for it in items:
        def ours(name: str, uri: str = it.uri) -> bool:
            rec = read_record(opts, name)
            return rec is None or rec.get("input") == uri

        if ours(it.name):
            out.append(it)
            continue
        name = free_name(it.name, taken, ours)
        taken.add(name.lower())
        out.append(Item(uri=it.uri, name=name))
    return out


def prior_record(opts: RunOptions, item: Item) -> tuple[dict | None, bytes | None]:
    """The finished record of an earlier run for this input (marked ``resumed``), or None, and
    the input's bytes (None if unreadable), so the caller need not read them again."""
    try:
        data = read_bytes(item.uri)
    except AcirError:
        return None, None
    prior = done_record(opts, item, hashlib.sha256(data).hexdigest())
    return (prior | {"resumed": True} if prior is not None else None), data


def _exif_of(data: bytes) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.info.get("exif")
    except Exception:  # noqa: BLE001 - a damaged header: no EXIF to keep
        return None


def prepare(item: Item, opts: RunOptions, data: bytes | None = None) -> tuple[dict, PhotoResult | None, bytes]:
    """Read (unless ``data`` has the input's bytes already) and decrypt one input and run the
    network-free stages. Returns the record so far, the result (None when skipped or failed:
    the record says why) and the JPEG bytes."""
    t0 = time.perf_counter()
    rec: dict = {"input": item.uri, "name": item.name, "options": fingerprint(opts)}
    try:
        if data is None:
            data = read_bytes(item.uri)
        rec["input_sha256"] = hashlib.sha256(data).hexdigest()
        if opts.fde:
            data = SectorCipher(opts.fde, opts.key, opts.sector_size).decrypt(
                data[: len(data) // opts.sector_size * opts.sector_size])
        thumb = ThumbnailSpec.parse(opts.thumbnail).for_photo(item.name)
        r = restore_photo(data, source=item.uri, stage=opts.stage, thumbnail=thumb, max_pixels=opts.max_pixels,
                          memory_budget=opts.memory_budget,
                          donors=donors_for(opts.references + opts.donor_inputs, item.uri))
    except UnsupportedJpeg as e:
        # kept, not dropped: a copy goes beside the outputs (a standard decoder may still open it)
        name = f"{item.name}.skipped{_jpeg_ext(item, opts)}"
        rec.update(status="skipped", reason=e.reason, seconds=time.perf_counter() - t0)
        try:
            write_atomic(join(opts.out, name), data)
            rec["outputs"] = {"copy": name}
        except AcirError as w:
            rec.update(status="failed", reason=f"{e.reason}; and its copy: {w.reason}")
        return rec, None, b""
    except AcirError as e:
        rec.update(status="failed", reason=e.reason, seconds=time.perf_counter() - t0)
        if isinstance(e, HeaderLost):
            rec["header_lost"] = True  # a second pass offers the run's intact photos as donors
        return rec, None, b""
    rec.update(r.record)
    return rec, r, data


def _jpeg_ext(item: Item, opts: RunOptions) -> str:
    ext = posixpath.splitext(item.uri)[1]
    return ext if ext and not opts.fde else ".jpg"


GCA_MAX_QUALITY = 85.0  # IJG quality from which the shipped network is not run (docs/network.md)


def apply_network(network, rec: dict, r: PhotoResult | None) -> tuple[np.ndarray | None, float]:
    """Run the network (a callable ``(image, thumb_up, region) -> image``, or None) where it
    applies; notes in ``rec`` why not when the photo has no thumbnail or is stored at quality
    ``GCA_MAX_QUALITY`` or more (the shipped network learned on quality-75 frames and lowers
    camera originals at 85-99 by 1.1 dB on average). Returns the image (or None) and its
    seconds."""
    if network is None or r is None or r.status != "restored":
        return None, 0.0
    if r.thumb_up is None:
        rec["note"] = "no thumbnail: GCA needs one, kept aware SCA + inpainting"
        return None, 0.0
    quality = r.record.get("quality")
    if quality is not None and quality >= GCA_MAX_QUALITY:
        rec["note"] = (f"quality {quality:.0f}: the network learned on quality-75 photos and made quality-85+ camera "
                       "originals worse, kept aware SCA + fill")
        return None, 0.0
    t = time.perf_counter()
    try:
        rgb = network(r.image, r.thumb_up, r.region if r.region is not None else r.mask)
    except Exception as exc:  # noqa: BLE001 - out of memory, a broken device: keep the SCA result
        rec["note"] = f"the network failed ({type(exc).__name__}: {exc}); kept aware SCA + fill"
        return None, time.perf_counter() - t
    return rgb, time.perf_counter() - t


def finish(item: Item, opts: RunOptions, rec: dict, r: PhotoResult | None, data: bytes,
           network_rgb: np.ndarray | None = None, network_seconds: float = 0.0) -> dict:
    """Write the outputs of one photo (image, mask, previews, then the record) and return the
    record. A write that fails makes the photo a failed one; the record still comes back."""
    outputs: dict[str, str] = {}
    try:
        if r is not None:
            final = _write_images(item, opts, rec, r, data, network_rgb, network_seconds, outputs)
            if opts.previews:
                _write_previews(item, opts, r, data, final, outputs)
            rec["outputs"] = outputs
        write_atomic(record_path(opts, item), json.dumps(rec, indent=1).encode())  # last: marks it done
    except AcirError as e:
        rec.update(status="failed", reason=e.reason, outputs=outputs)
    return rec


def _write_images(item, opts, rec, r, data, network_rgb, network_seconds, outputs) -> np.ndarray:
    if r.status == "clean":
        outputs["image"] = f"{item.name}.intact{_jpeg_ext(item, opts)}"
        write_atomic(join(opts.out, outputs["image"]), data, protect=(item.uri,))  # byte for byte
        return r.image
    final = network_rgb if network_rgb is not None else r.image
    if network_rgb is not None:
        rec["stage"] = "gca"
        rec["timings"]["gca"] = network_seconds
    if opts.format == "png":
        outputs["image"], blob = f"{item.name}.restored.png", png_bytes(final)
    else:
        outputs["image"] = f"{item.name}.restored.jpg"
        blob = _repaired(r, final, data, rec)
    write_atomic(join(opts.out, outputs["image"]), blob, protect=(item.uri,))
    outputs["mask"] = f"{item.name}.mask.png"
    write_atomic(join(opts.out, outputs["mask"]), mask_png(r.mask), protect=(item.uri,))
    return final


def _repaired(r: PhotoResult, final: np.ndarray, data: bytes, rec: dict) -> bytes:
    """The repaired JPEG (the photo's header and corrected coefficients, the made-up MCUs
    transformed from ``final``); a q95 re-encode keeping the EXIF when no coefficients came."""
    if r.coded is None:
        rec["jpeg"] = {"huffman": "re-encoded at quality 95"}
        return jpeg_bytes(final, quality=95, exif=_exif_of(data), subsampling=0)
    made = r.region if r.stage != "decode" and r.region is not None else np.zeros(final.shape[:2], bool)
    rep = repaired_jpeg(r.coded, final, made)
    rec["jpeg"] = rep.to_record()
    return rep.data


def _write_previews(item, opts, r, data, final, outputs) -> None:
    try:
        before = load_rgb(data, item.uri).rgb
    except AcirError:  # what a standard decoder shows of a file it cannot open (a lost header): nothing
        before = np.full_like(final, 128)
    prev = {"before": before, "after": final, "mask": (r.mask * np.uint8(255)).astype(np.uint8)}
    if r.thumb_up is not None:
        prev["thumbnail"] = r.thumb_up
    for k, img in prev.items():
        outputs[f"preview_{k}"] = f"report_files/{item.name}.{k}.jpg"
        write_atomic(join(opts.out, outputs[f"preview_{k}"]), preview_bytes(img))


def donor_pass(opts: RunOptions, items: list[Item], records: list[dict]) -> tuple[RunOptions, list[Item]]:
    """The photos whose header was lost and no donor fitted, and the options that offer them
    the run's photos that decoded (intact or restored, their own header read) as donors."""
    lost = {r.get("name") for r in records if r.get("header_lost")}
    good = tuple(r["input"] for r in records if r.get("status") in DONE and "header" not in r
                 and r["input"] not in opts.donor_inputs)
    if not lost or not good:
        return opts, []
    return replace(opts, donor_inputs=opts.donor_inputs + good), [it for it in items if it.name in lost]


def run_item(item: Item, opts: RunOptions, network=None) -> dict:
    """Everything for one input, resuming: an input whose record says it was done (and whose
    bytes have not changed since) is not redone. ``network``: the GCA callable for stage "gca".
    Failures become records, never exceptions."""
    t0 = time.perf_counter()
    prior, data = prior_record(opts, item)
    if prior is not None:
        return prior
    rec, r, data = prepare(item, opts, data)
    net_rgb, net_s = apply_network(network if opts.stage == "gca" else None, rec, r)
    rec["seconds"] = time.perf_counter() - t0
    return finish(item, opts, rec, r, data, net_rgb, net_s)


@dataclass(kw_only=True)
class Summary:
    """Counts over a run's records (including photos restored by earlier runs into the folder)."""

    total: int = 0
    restored: int = 0  # truncated ones included
    truncated: int = 0
    clean: int = 0
    skipped: int = 0
    failed: int = 0
    resumed: int = 0
    seconds: float = 0.0
    stage_counts: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    skips: list = field(default_factory=list)
    left_out: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def summarise(records: list[dict], seconds: float, resumed: int = 0,
              left_out: list[tuple[str, str]] | None = None) -> Summary:
    s = Summary(total=len(records), seconds=seconds, resumed=resumed,
                left_out=[{"input": u, "reason": why} for u, why in (left_out or [])])
    for r in records:
        st = r.get("status")
        if st in ("restored", "truncated"):
            s.restored += 1
            s.truncated += st == "truncated"
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


def with_earlier_records(opts: RunOptions, records: list[dict]) -> list[dict]:
    """This run's records plus the successful ones of earlier runs into the same folder (from
    its summary.json) for photos this run did not see and whose record is still there, so the
    summary keeps every photo restored there."""
    try:
        fs, p = fsspec.core.url_to_fs(join(opts.out, "summary.json"))
        earlier = json.loads(fs.cat_file(p)).get("records", []) if fs.exists(p) else []
    except (ValueError, OSError):
        earlier = []
    names = {r.get("name") for r in records}
    return records + [r for r in earlier if isinstance(r, dict) and r.get("name") not in names
                      and r.get("status") in DONE and read_record(opts, r["name"]) is not None]


def write_run_outputs(opts: RunOptions, records: list[dict], summary: Summary) -> None:
    """summary.json (counts, failures, skipped and left-out inputs with reasons, every record),
    skipped.txt and the contact sheet report.html."""
    doc = summary.to_dict() | {"records": sorted(records, key=lambda r: r.get("name", ""))}
    write_atomic(join(opts.out, "summary.json"), json.dumps(doc, indent=1).encode())
    skipped = "".join(f"{x['input']}\t{x['reason']}\n" for x in summary.skips + summary.left_out)
    write_atomic(join(opts.out, "skipped.txt"), skipped.encode())
    write_atomic(join(opts.out, "report.html"), report_html(records, summary).encode())


def default_memory_budget(jobs: int = 1) -> int:
    """Bytes one photo may use when ``jobs`` photos run at once: half the machine's memory shared
    among them (0 where the machine does not say)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0
    return int(total * 0.5) // max(1, jobs)


def parse_size(text: str, jobs: int = 1) -> int:
    """A ``--memory-budget``: ``auto`` (:func:`default_memory_budget`), ``0`` (none), or a byte
    count with an optional K/M/G/T suffix (powers of 1024)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    if t == "AUTO":
        return default_memory_budget(jobs)
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        raise InvalidParameter(f"--memory-budget must be auto, 0 or a size like 4G, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise InvalidParameter(f"--memory-budget must be auto, 0 or a size like 4G, got {text!r}")
    return int(value)
