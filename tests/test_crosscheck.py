"""Stretches of runs moved to where the SCA without the thumbnail put them, borders allowing."""
from __future__ import annotations

import numpy as np
import pytest

import acir_core.sca.crosscheck as X
from acir_core.sca.crosscheck import crosscheck, reference_positions
from acir_core.sca.options import RunOptions
from acir_core.sca.result import SegmentFix
from acir_core.sca.rewrap import held
from tests.test_rewrap import COLS, N, blocks_of, edges_of, placed

TRUE = np.arange(N)  # every decoded MCU at its own index: where the unguided SCA put them
LAYERED = [(0, 23, 0), (23, 47, 1), (47, 49, 0), (49, 71, 1), (71, 230, 0)]  # rows 1 and 2 late, a gap between


def test_a_stretch_locked_in_off_goes_where_the_other_sca_has_it():
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 170, 1), (170, 230, 1)])
    edges = edges_of(blocks_of(120.0, stripes=10.0))
    assert crosscheck(pls, TRUE, edges, COLS, held(pls, set()), RunOptions()) == 3
    assert [pl.shift for pl in pls] == [0, 0, 0, 0]


def test_the_other_sca_wrong_moves_nothing():
    """Runs in place whose reference puts them an MCU late: their borders say no."""
    pls = placed([(0, 60, 0), (60, 110, 0), (110, 170, 0), (170, 230, 0)])
    hint = TRUE.copy()
    hint[60:] += 1
    edges = edges_of(blocks_of(120.0, stripes=10.0))
    assert crosscheck(pls, hint, edges, COLS, held(pls, set()), RunOptions()) == 0
    assert [pl.shift for pl in pls] == [0, 0, 0, 0]


def test_flat_content_moves_nothing():
    """Where the borders cannot tell the places apart, the guided SCA's stays."""
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 170, 1), (170, 230, 1)])
    assert crosscheck(pls, TRUE, edges_of(blocks_of(0.0, 0.0)), COLS, held(pls, set()), RunOptions()) == 0
    assert [pl.shift for pl in pls] == [0, 1, 1, 1]


def test_runs_above_and_below_each_other_move_as_one_group():
    """Two late runs, a row each, one below the other, with a short run in place between them in
    the decode: each moved alone would fit the rows on one side as much better as the other late
    run on the other side worse; moved together they fit."""
    pls = placed(LAYERED)
    edges = edges_of(blocks_of(120.0, stripes=10.0))
    assert crosscheck(list(pls), TRUE, edges, COLS, held(pls, set()), RunOptions()) == 2
    groups = X._groups(pls, [0, -1, 0, -1, 0], np.full(N, -1, np.int64), COLS)
    assert groups == [[1], [3]]  # with no one placed, only the decode joins runs
    owner = np.full(N, -1, np.int64)
    for r, pl in enumerate(pls):
        owner[pl.run.trusted + pl.shift] = r
    assert X._groups(pls, [0, -1, 0, -1, 0], owner, COLS) == [[1, 3]]


def test_a_group_needs_the_vertical_join(monkeypatch):
    """Without joining runs above and below each other, the two late runs of the test above stay."""
    pls = placed(LAYERED)
    edges = edges_of(blocks_of(120.0, stripes=10.0))

    def decode_order_only(placements, deltas, owner, cols):
        return [[r] for r, d in enumerate(deltas) if d]
    monkeypatch.setattr(X, "_groups", decode_order_only)
    assert crosscheck(pls, TRUE, edges, COLS, held(pls, set()), RunOptions()) == 0


def textured() -> tuple:
    """Edges of a picture whose columns differ at random: a run an MCU or more aside meets the
    rows above and below it nowhere (stripes repeat; this does not)."""
    blocks = blocks_of(120.0)
    pattern = np.random.default_rng(3).normal(0, 12, (COLS, 8))
    return edges_of(blocks + pattern[np.arange(N) % COLS][:, None, :])


def test_a_held_run_stays_where_the_borders_would_move_it():
    pls = placed([(0, 60, 1), (60, 230, 0)])  # the first run is held (its interval's start places it)
    fixed = held(pls, set())
    assert fixed[0] and crosscheck(list(pls), TRUE, textured(), COLS, fixed, RunOptions()) == 0
    assert crosscheck(pls, TRUE, textured(), COLS, np.zeros(2, bool), RunOptions()) == 1  # else it moves


def test_moves_beyond_cross_delta_are_not_taken(monkeypatch):
    pls = placed([(0, 60, 0), (60, 230, 3)])
    monkeypatch.setattr(X, "CROSS_DELTA", 2)
    assert crosscheck(list(pls), TRUE, textured(), COLS, held(pls, set()), RunOptions()) == 0
    monkeypatch.setattr(X, "CROSS_DELTA", 3)
    assert crosscheck(pls, TRUE, textured(), COLS, held(pls, set()), RunOptions()) == 1
    assert [pl.shift for pl in pls] == [0, 0]


def test_a_run_the_other_sca_placed_in_part_stays(monkeypatch):
    """A run of which the unguided SCA placed less than ``CROSS_COVER``: its say is too small."""
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 230, 0)])
    hint = TRUE.copy()
    hint[60:80] = -1  # 60 % of the run placed
    assert crosscheck(list(pls), hint, textured(), COLS, held(pls, set()), RunOptions()) == 0
    monkeypatch.setattr(X, "CROSS_COVER", 0.5)
    assert crosscheck(pls, hint, textured(), COLS, held(pls, set()), RunOptions()) == 1


def test_a_run_the_other_sca_did_not_place_stays():
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 230, 0)])
    hint = TRUE.copy()
    hint[60:110] = -1
    edges = edges_of(blocks_of(120.0, stripes=10.0))
    assert crosscheck(pls, hint, edges, COLS, held(pls, set()), RunOptions()) == 0


@pytest.mark.parametrize("confident", [True, False])
def test_reference_positions_follow_the_trusted_fixes(confident):
    fixes = [SegmentFix(scan=0, first_mcu=0, end_mcu=5, shift=0, dc=(0,), cost=0.0, confident=True),
             SegmentFix(scan=0, first_mcu=6, end_mcu=10, shift=-1, dc=(0,), cost=0.0, confident=confident),
             SegmentFix(scan=1, first_mcu=0, end_mcu=10, shift=2, dc=(0,), cost=0.0, confident=True)]
    pos = reference_positions(fixes, 12)
    assert pos[:5].tolist() == [0, 1, 2, 3, 4] and pos[5] == -1 and pos[10:].tolist() == [-1, -1]
    assert pos[6:10].tolist() == ([5, 6, 7, 8] if confident else [-1] * 4)


def test_a_run_the_other_sca_places_in_two_pieces_is_cut_and_its_tail_moved():
    """A silent break inside a run the guided SCA placed whole: its head is in place, its tail
    an MCU late; the unguided SCA placed the two apart, and the tail goes there."""
    pls = placed([(0, 40, 0), (40, 200, 0), (200, 230, 0)])
    hint = TRUE.copy()
    hint[89:] -= 1  # the decode gained an MCU at 89: from there on each belongs one earlier
    edges = edges_of(blocks_of(120.0, stripes=10.0)[np.r_[0:89, 88:N - 1]])  # what such a decode holds
    assert crosscheck(pls, hint, edges, COLS, held(pls, set()), RunOptions()) == 2
    assert len(pls) == 4 and [pl.shift for pl in pls] == [0, 0, -1, -1]
    assert pls[1].run.end == pls[2].run.first and pls[2].run.trusted[0] > 89


def test_a_run_cut_for_nothing_is_put_back_whole():
    """The other SCA steps inside a run that is right: the tail's borders keep it, and the run
    comes back as it was, not in pieces (splitting leaves MCUs out around the cut)."""
    pls = placed([(0, 40, 0), (40, 200, 0), (200, 230, 0)])
    before = list(pls)
    hint = TRUE.copy()
    hint[120:200] += 1
    assert crosscheck(pls, hint, edges_of(blocks_of(120.0, stripes=10.0)), COLS, held(pls, set()),
                      RunOptions()) == 0
    assert len(pls) == 3 and all(a is b for a, b in zip(pls, before))


def test_no_cut_where_the_other_sca_is_of_many_minds():
    pls = placed([(0, 40, 0), (40, 200, 0), (200, 230, 0)])
    hint = TRUE.copy()
    hint[40:200:3] += 1
    hint[41:200:3] -= 1
    assert X._split_by_hint(pls[1], hint, RunOptions()) == [pls[1]]


def test_compensate_hands_the_unguided_places_to_the_guided_sca_only(monkeypatch):
    """The engine's route: the unguided SCA's places reach the guided SCA (every scan its own),
    not an SCA told to work without the thumbnail."""
    from PIL import Image

    import acir_core.sca.aware_sca as A
    from acir_core.jpeg.decoder import decode
    from acir_core.sca.compensate import compensate
    from tests.conftest import encode_jpeg, photo_like

    rgb = photo_like(640, 480, seed=4)
    data = bytearray(encode_jpeg(rgb, quality=92))
    data[int(len(data) * 0.5)] ^= 0x10
    result = decode(bytes(data), "robust")
    thumb = np.asarray(Image.fromarray(rgb).resize((160, 120), Image.BOX))
    seen = []
    real = A.crosscheck

    def spy(placements, hint, *args):
        seen.append(hint.copy())
        return real(placements, hint, *args)
    monkeypatch.setattr(A, "crosscheck", spy)
    alone = compensate(result, None, fill="none")
    assert not seen
    compensate(result, thumb, reference=alone, guide=False)
    assert not seen
    compensate(result, thumb, reference=alone)
    sr = result.scans[0]
    expected = reference_positions(alone.sca.segments, sr.mcu_rows * sr.mcu_cols)
    assert seen and all(np.array_equal(h, expected) for h in seen) and (expected >= 0).mean() > 0.5
