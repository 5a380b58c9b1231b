"""Shared fixtures: small photo-like JPEGs made with Pillow, and the optional ../shared data."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An RGB image with what photos have: smooth gradients, edges, texture and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([
        120 + 80 * np.sin(x / max(width, 1) * 3.1 + seed),
        110 + 70 * np.cos(y / max(height, 1) * 2.3),
        100 + 60 * np.sin((x + y) / max(width + height, 1) * 4.0),
    ], axis=-1)
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = rng.integers(0, max(width, 2)), rng.integers(0, max(height, 2))
        x1, y1 = x0 + rng.integers(1, max(width // 3, 2)), y0 + rng.integers(1, max(height // 3, 2))
        draw.ellipse([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    arr = np.asarray(im).astype(np.int16) + rng.integers(-12, 13, (height, width, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def run_fuzzer(script: str, cases: int, seed: int, tmp_path: Path) -> None:
    """Run ``tests/<script>`` (a seeded fuzzer) in a fresh process compiled with numba bounds
    checking, where an out-of-range index raises IndexError instead of reading past a buffer, and
    require that no case raised anything unexpected."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / script), str(cases), str(seed)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "0 unexpected exceptions" in proc.stdout


def encode_jpeg(rgb: np.ndarray, quality: int = 75, subsampling: int = 2, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def photo_rgb() -> np.ndarray:
    return photo_like(256, 128, seed=1)


@pytest.fixture(scope="session")
def photo_jpeg(photo_rgb) -> bytes:
    """A 256×128 q75 4:2:0 baseline JPEG, the paper's encoder settings at a small size."""
    return encode_jpeg(photo_rgb)


@pytest.fixture(scope="session")
def big_photo_jpeg() -> bytes:
    """A 1024×512 JPEG: big enough for many sectors and a few dozen flips at BER 1e-4."""
    return encode_jpeg(photo_like(1024, 512, seed=2))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a clean skip when the checkout has none beside it."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (../shared beside the checkout)")
    return p
