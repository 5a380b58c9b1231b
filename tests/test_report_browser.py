"""report.html in a real headless browser (Debian's Chromium): it renders, shows the pictures,
and sorts. Skipped where no Chromium is installed (``apt-get install chromium``)."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from acir_core.bitflip import corrupt
from acir_core.thumbnail import with_thumbnail
from acir_cli.app import main
from conftest import encode_jpeg, photo_like

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")


def _chromium(*args: str) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    clean = with_thumbnail(encode_jpeg(photo_like(512, 256, seed=31)))
    (d / "intact.jpg").write_bytes(clean)
    for i, ber in enumerate((1e-4, 4e-4)):
        (d / f"damaged{i}.jpg").write_bytes(corrupt(clean, ber=ber, seed=i).data)
    out = tmp_path_factory.mktemp("out")
    main(["restore", str(d), "--out", str(out), "--stage", "sca"])
    return out / "report.html"


def test_report_renders_with_pictures(report, tmp_path):
    shot = tmp_path / "shot.png"
    _chromium("--window-size=1400,900", f"--screenshot={shot}", report.as_uri())
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (900, 1400)
    # pictures loaded: many distinct colours, not just text on a flat background
    colours = len(np.unique(img.reshape(-1, 3) // 8, axis=0))
    assert colours > 500, colours


def _order(dom: str) -> list[str]:
    return re.findall(r'<tr data-name="([^"]+)"', dom)


def test_report_sorts(report):
    by_damage = _order(_chromium("--dump-dom", report.as_uri()))
    assert by_damage[-1] == "intact" and set(by_damage) == {"intact", "damaged0", "damaged1"}
    by_name = _order(_chromium("--dump-dom", report.as_uri() + "#sort=name-asc"))
    assert by_name == sorted(by_name)
    by_damage_asc = _order(_chromium("--dump-dom", report.as_uri() + "#sort=damage-asc"))
    assert by_damage_asc == by_damage[::-1]
