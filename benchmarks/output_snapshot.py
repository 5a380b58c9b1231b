"""Hash what acir writes for a fixed set of cases, to check that a refactoring changed no output.

Runs the `acir` command of a source tree (``--tree``, default this checkout) on: the damaged
examples (stages sca and gca), train photos re-encoded with and without restart markers and
EXIF thumbnails, corrupted at two BERs and restored with and without the thumbnail, `acir sca`
with both methods, and a few dataset rows from `acir generate`. Records are compared without
their timings and paths. ``--compare A.json B.json`` lists the cases whose hashes differ.

    python benchmarks/output_snapshot.py --out /tmp/after.json
    python benchmarks/output_snapshot.py --compare /tmp/before.json /tmp/after.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "train"
VOLATILE = {"seconds", "timings", "input", "outputs", "output", "resumed", "source", "path", "uri", "name",
            "options"}  # options: the resume fingerprint records carry since 2026-12-03
# output names of both layouts -> one key: before 2026-12-03 <stem>.png / .mask.png / .json / .jpg
# (intact copy), since then <stem>.jpg.restored.png / .jpg.mask.png / .jpg.json / .jpg.intact.jpg
_NAMES = [(re.compile(r"^(.*)\.jpg\.(restored|intact)\.(png|jpg)$"), r"\1.image"),
          (re.compile(r"^(.*)\.jpg\.mask\.png$"), r"\1.mask"),
          (re.compile(r"^(.*)\.jpg\.json$"), r"\1.record"),
          (re.compile(r"^(.*)\.mask\.png$"), r"\1.mask"),
          (re.compile(r"^(.*)\.(png|jpg)$"), r"\1.image"),
          (re.compile(r"^(?!summary)(.*)\.json$"), r"\1.record")]


def _key(rel: str) -> str:
    for pattern, repl in _NAMES:
        if pattern.match(rel):
            return pattern.sub(repl, rel)
    return rel


def _acir(tree: Path, *args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(tree))
    r = subprocess.run([sys.executable, "-m", "acir_cli", *args], cwd=tree, env=env, capture_output=True, text=True)
    if r.returncode not in (0, 1):  # 1: some photo failed, which the records show
        raise RuntimeError(f"acir {' '.join(args)} exited {r.returncode}: {r.stderr[-2000:]}")


def _stable(obj):
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in sorted(obj.items()) if k not in VOLATILE}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 9)
    return obj


def _hash_tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or "report_files" in p.parts or p.name in ("report.html", "skipped.txt"):
            continue
        rel = str(p.relative_to(root))
        key = _key(rel) if root.name.startswith(("examples-", "out-")) else rel
        if p.suffix == ".json":
            doc = json.loads(p.read_text())
            if p.name == "summary.json":
                doc = {"records": doc.get("records", [])}
            blob = json.dumps(_stable(doc), sort_keys=True).encode()
        elif p.suffix == ".parquet":
            blob = _parquet_rows(p)
        else:
            blob = p.read_bytes()
        out[key] = hashlib.sha256(blob).hexdigest()[:16]
    return out


def _parquet_rows(path: Path) -> bytes:
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    keep = [c for c in t.column_names if "second" not in c and "time" not in c and "version" not in c]
    rows = sorted(t.select(keep).to_pylist(), key=lambda r: str(r.get("id", r.get("key", ""))))
    h = hashlib.sha256()
    for r in rows:
        for k in sorted(r):
            h.update(k.encode())
            h.update(r[k] if isinstance(r[k], bytes) else repr(r[k]).encode())
    return h.digest()


def _photos(work: Path, n: int) -> tuple[Path, Path]:
    """n train photos at 768 px wide, q90 4:2:0: plain ones (with EXIF thumbnails) in ``thumb``,
    ones with a restart marker every MCU row (no thumbnail) in ``rst``."""
    src = sorted(SHARED.glob("*.jpg"))[:n]
    plain, rst = work / "plain", work / "rst"
    plain.mkdir()
    rst.mkdir()
    for p in src:
        im = Image.open(p).convert("RGB")
        im = im.resize((768, max(16, round(768 * im.height / im.width))), Image.BICUBIC)
        im.save(plain / p.name, "JPEG", quality=90, subsampling=2)
        im.save(rst / p.name, "JPEG", quality=90, subsampling=2, restart_marker_rows=1)
    return plain, rst


def snapshot(tree: Path, n: int) -> dict[str, dict[str, str]]:
    cases: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for stage in ("sca", "gca"):
            out = work / f"examples-{stage}"
            _acir(tree, "restore", "examples/damaged", "--out", str(out), "--stage", stage)
            cases[f"examples-{stage}"] = _hash_tree(out)
        if not SHARED.is_dir():
            return cases
        plain, rst = _photos(work, n)
        thumbs = work / "thumbs"
        _acir(tree, "thumbnail", "embed", *map(str, sorted(plain.glob("*.jpg"))), "--out", str(thumbs))
        for name, folder in (("thumb", thumbs), ("rst", rst)):
            for ber in ("1e-5", "1e-4"):
                bad = work / f"{name}-{ber}"
                _acir(tree, "corrupt", *map(str, sorted(folder.glob("*.jpg"))), "--out", str(bad),
                      "--ber", ber, "--seed", "3", "--no-metrics")
                for thumb in ("auto", "none"):
                    out = work / f"out-{name}-{ber}-{thumb}"
                    _acir(tree, "restore", str(bad), "--out", str(out), "--stage", "sca", "--thumbnail", thumb)
                    cases[f"restore-{name}-{ber}-{thumb}"] = _hash_tree(out)
                first = sorted(bad.glob("*.jpg"))[0]
                for method in ("aware", "paper"):
                    out = work / f"sca-{name}-{ber}-{method}"
                    out.mkdir()
                    _acir(tree, "sca", str(first), "--out", str(out / "x.png"), "--method", method,
                          "--mask", str(out / "m.png"))
                    cases[f"sca-{name}-{ber}-{method}"] = _hash_tree(out)
        data = work / "rows"
        _acir(tree, "generate", "--input", *map(str, sorted(SHARED.glob("*.jpg"))[:3]), "--output", str(data),
              "--ber", "1e-5", "1e-4", "--size", "512x256", "--shards", "1", "--sink", "fsspec")
        cases["generate"] = _hash_tree(data)
    return cases


def compare(a: dict, b: dict) -> list[str]:
    diffs = []
    for case in sorted(set(a) | set(b)):
        fa, fb = a.get(case, {}), b.get(case, {})
        for f in sorted(set(fa) | set(fb)):
            if fa.get(f) != fb.get(f):
                diffs.append(f"{case}/{f}: {fa.get(f)} != {fb.get(f)}")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--out", help="write the hashes here (JSON)")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = ap.parse_args()
    if args.compare:
        a, b = (json.loads(Path(p).read_text()) for p in args.compare)
        diffs = compare(a, b)
        files = sum(len(v) for v in a.values())
        print(f"{len(a)} cases, {files} files: {len(diffs)} differ")
        print("\n".join(diffs))
        return 1 if diffs else 0
    cases = snapshot(Path(args.tree).resolve(), args.photos)
    text = json.dumps(cases, indent=1, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    print(f"{len(cases)} cases, {sum(len(v) for v in cases.values())} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
