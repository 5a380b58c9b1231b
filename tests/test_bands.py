"""Row bands on several threads (acir_core.bands): the same pixels as one thread, bit for bit."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from acir_core import bands
from acir_core.jpeg.decoder import decode
from acir_core.jpeg.render import SamplePlanes, component_plane, render, render_rows
from acir_core.sca.edges import Edges
from acir_core.sca.evidence import judge
from acir_core.sca.fill import dilate, thumbnail_spread
from acir_core.sca.resize import bicubic_resize
from acir_core.thumbframe import luma


@pytest.fixture
def threads(monkeypatch):
    """Run ``fn`` with ``ACIR_THREADS`` set to ``n``."""
    def run(n, fn, *args):
        monkeypatch.setenv("ACIR_THREADS", str(n))
        return fn(*args)
    return run


def test_split_covers_every_row_once_in_even_bands():
    for n, parts, min_rows in ((100, 3, 16), (47, 4, 10), (5, 8, 16), (0, 2, 16), (1000, 7, 1)):
        got = bands.split(n, parts, min_rows)
        assert got[0][0] == 0 and got[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(got, got[1:]))
        assert len(got) <= max(parts, 1)
        sizes = [hi - lo for lo, hi in got]
        assert len(got) == 1 or min(sizes) >= min_rows
        assert max(sizes) - min(sizes) <= 1


def test_threads_reads_the_environment(monkeypatch):
    monkeypatch.setenv("ACIR_THREADS", "3")
    assert bands.threads() == 3
    monkeypatch.setenv("ACIR_THREADS", "0")
    assert bands.threads() == 1
    monkeypatch.setenv("ACIR_THREADS", "many")
    assert bands.threads() >= 1  # not a number: the cores, not a crash


def test_a_process_takes_its_share_unless_the_environment_says(monkeypatch):
    from acir_core.process import tune_process

    monkeypatch.delenv("ACIR_THREADS", raising=False)
    try:
        tune_process(1)
        assert bands.threads() == 1
        assert bands.over_rows(lambda lo, hi: (lo, hi), 1000, 16) == [(0, 1000)]
        monkeypatch.setenv("ACIR_THREADS", "4")
        assert bands.threads() == 4
    finally:
        bands.set_threads(None)
    monkeypatch.delenv("ACIR_THREADS")
    assert bands.threads() >= 1


def test_over_rows_uses_several_threads_and_keeps_band_order(threads):
    seen = []

    def work(lo, hi):
        seen.append(threading.get_ident())
        return lo, hi

    got = threads(3, bands.over_rows, work, 300, 16)
    assert got == bands.split(300, 3, 16)
    assert len(set(seen)) > 1
    seen.clear()
    assert threads(1, bands.over_rows, work, 300, 16) == [(0, 300)]
    assert seen == [threading.get_ident()]


def test_a_band_inside_a_band_runs_on_its_own_thread(threads):
    """Work handed to the pool that splits again must not wait on the pool it occupies."""
    def inner(lo, hi):
        return bands.over_rows(lambda a, b: (a, b), 200, 16)

    got = threads(2, bands.over_rows, inner, 400, 16)
    assert got == [[(0, 200)], [(0, 200)]]  # each band ran its inner work whole, on its own thread


def test_a_band_that_fails_leaves_no_band_running(threads):
    """The error reaches the caller only once every band has stopped writing."""
    import time

    done = []

    def work(lo, hi):
        if lo == 0:
            raise ValueError("band 0")
        time.sleep(0.2)
        done.append(lo)

    with pytest.raises(ValueError):
        threads(2, bands.over_rows, work, 400, 16)
    assert done == [200]


def test_banded_kernels_equal_one_thread(threads):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (203, 157, 3), dtype=np.uint8)
    rgb[40:90] = 128  # flat cells for the evidence
    mask = rng.random((203, 157)) < 0.01
    coefs = rng.integers(-40, 40, (23, 19, 64)).astype(np.int16)
    qt = rng.integers(1, 12, 64)
    mcus = rng.integers(-30, 30, (517, 2, 2, 64)).astype(np.int16)

    def all_of():
        e = Edges.of(mcus, qt)
        return [luma(rgb), dilate(mask, 3), component_plane(coefs, qt), bicubic_resize(rgb, 61, 47),
                bicubic_resize(rgb, 150, 31), *(getattr(e, f) for f in ("top", "top2", "bottom", "bottom2",
                                                                      "left", "left2", "right", "right2", "mean")),
                np.array([thumbnail_spread(rgb, mask, rgb[::-1].copy(), (4, 4)) or -1.0]),
                np.array([judge(rgb, (8, 8)).score])]

    one = threads(1, all_of)
    for n in (2, 3, 5):
        for a, b in zip(one, threads(n, all_of)):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_a_colour_render_and_a_render_of_changed_rows_equal_one_thread(threads):
    from conftest import encode_jpeg, photo_like

    result = decode(encode_jpeg(photo_like(160, 240, seed=2), quality=85), "robust")
    frame, coefs, qts = result.frame, result.coefficients, result.qtables
    edited = tuple(c.copy() for c in coefs)
    edited[0][6:10, :, 0] += 3  # a DC fix on a few block rows

    def both():
        planes = SamplePlanes.empty(coefs)
        whole = render(frame, coefs, qts, planes)
        changed = np.zeros(-(-frame.height // (8 * frame.max_v)), bool)
        changed[3:5] = True
        return whole, render_rows(frame, edited, qts, whole, changed, planes=planes)

    one = threads(1, both)
    assert np.array_equal(one[0], result.rgb)
    for n in (2, 3):
        got = threads(n, both)
        assert all(np.array_equal(a, b) for a, b in zip(one, got))
    assert not np.array_equal(one[0], one[1])
