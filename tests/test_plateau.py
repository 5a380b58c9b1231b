"""A run's luma DC pinned on the clipped highlights or shadows it holds (acir_core.sca.plateau)."""
from __future__ import annotations

import numpy as np
import pytest

from acir_core.sca.plateau import PLATEAU_BLOCKS, exact_levels, pin_plateau, plateau_level


def _run(dcs: list[int], ac: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MCU-major luma blocks (N, 2, 2, 64), each MCU's four blocks flat at the given decoded DC
    (``ac`` added to one AC coefficient), and the run's MCU indices."""
    y = np.zeros((len(dcs), 2, 2, 64), np.int16)
    y[..., 0] = np.asarray(dcs, np.int16)[:, None, None]
    y[..., 5] = ac
    return y, np.arange(len(dcs))


def test_a_plateau_a_few_steps_off_white_is_put_on_white():
    y, m = _run([1019] * PLATEAU_BLOCKS + [300, 400])  # q0 = 1: white is DC 1016, the run 3 steps high
    assert pin_plateau(y, m, 0, 1.0, {1016}) == 3
    assert pin_plateau(y, m, 0, 1.0, set()) == 0  # no run known exact holds one: nothing to go by
    y, m = _run([1019 + 40] * PLATEAU_BLOCKS)  # seen through a correction the fit already made
    assert pin_plateau(y, m, 40, 1.0, {1016}) == 43


def test_clipped_shadows_pin_too():
    y, m = _run([-512 - 2] * PLATEAU_BLOCKS)  # q0 = 2: black is DC -512
    assert pin_plateau(y, m, 0, 2.0, {-512}) == -2


@pytest.mark.parametrize("dcs, ac", [([1019] * (PLATEAU_BLOCKS // 4 - 1), 0),  # too few flat blocks
                                     ([1019] * PLATEAU_BLOCKS, 3),  # not flat
                                     ([1016 + 9] * PLATEAU_BLOCKS, 0),  # further than a fit is off
                                     ([1018] * PLATEAU_BLOCKS + [1019], 0),  # a flat block above: not white
                                     ([1018] * PLATEAU_BLOCKS + [1030], 0),  # ... however far above
                                     ([1016] * PLATEAU_BLOCKS, 0)])  # on white already
def test_no_move_without_a_plateau_off_its_clipped_value(dcs, ac):
    y, m = _run(dcs, ac)
    assert pin_plateau(y, m, 0, 1.0, {1016}) == 0


def test_a_camera_that_clips_a_step_below_white_is_followed():
    y, m = _run([1015] * PLATEAU_BLOCKS)  # the first run's plateau, exact: this camera clips at 1015
    assert plateau_level(y, m, 0, 1.0) == 1015
    y, m = _run([1017] * PLATEAU_BLOCKS)  # a later run two steps high
    assert pin_plateau(y, m, 0, 1.0, {1015}) == 2


def test_clipped_shadows_with_a_flat_block_below_are_not_a_plateau():
    y, m = _run([-1024 + 2] * PLATEAU_BLOCKS + [-1024 - 7])
    assert plateau_level(y, m, 0, 1.0) is None


def test_only_levels_a_camera_clips_at_are_taken_from_the_exact_runs():
    y, m = _run([1015] * PLATEAU_BLOCKS + [1013] * PLATEAU_BLOCKS)
    first, second = m[:PLATEAU_BLOCKS], m[PLATEAU_BLOCKS:]
    assert exact_levels([first], y, 1.0) == {1015}
    # 3 steps below white: a silent step inside a first run, not a camera's clip
    assert exact_levels([second], y, 1.0) == set()


def test_exact_levels_reads_many_runs_at_once():
    y, m = _run([1016] * PLATEAU_BLOCKS + [300] * PLATEAU_BLOCKS + [-1023] * PLATEAU_BLOCKS)
    runs = [m[:PLATEAU_BLOCKS], np.zeros(0, np.int64), m[PLATEAU_BLOCKS:2 * PLATEAU_BLOCKS], m[2 * PLATEAU_BLOCKS:]]
    assert exact_levels(runs, y, 1.0) == {1016, -1023}
    assert exact_levels([np.zeros(0, np.int64)], y, 1.0) == set()
