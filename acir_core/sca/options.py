"""Tunables of the decoder-aware SCA, one frozen dataclass per stage.

``AwareOptions()`` is what ``acir sca`` and ``acir restore`` use; tests and experiments change a
field with ``AwareOptions(runs=RunOptions(settle_mcus=0))``. Units: MCUs in decode order, bits
of the scan, quantiser steps of DC (``q/8`` sample levels) or sample levels (0-255), as each
field says. Why each value was chosen is in ``benchmarks/HISTORY.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Cutting restart intervals into runs at resyncs and at silent breaks."""

    back_bits: int = 256  # bits before a failure whose MCUs are damaged (where the garbage began)
    forward_bits: int = 320  # bits after a failure whose MCUs are damaged (CBC's garbled block)
    back_mcus: int = 3  # MCUs walked back from a failure and left out
    skip_mcus: int = 1  # MCUs after a resume point left out
    settle_mcus: int = 5  # MCUs after those placed but marked (a resume a few bits early)
    lead_mcus: int = 2  # MCUs before the walked-back ones placed but marked (garbage decoding on)
    silent_margin: int = 8  # MCUs either side of a silent break placed but not judging the shift (garbage unlocated)
    min_split: int = 24  # MCUs a piece of a run split at a DC step must keep on either side
    split_score: float = 12.0  # standard errors a DC step against the thumbnail must reach to split
    split_jump: float = 1.5  # DC steps a step against the thumbnail must reach to split
    pulse_min: float = 2.0  # levels of roughness a one-row pulse must rise by to split a run
    pulse_sigma: float = 6.0  # spreads of the row-mean roughness a pulse must rise by to split
    max_depth: int = 12  # recursion limit of the splitting (pieces of pieces)
    step_sigma: float = 7.0  # standard errors the signed step across a row of MCU edges must reach to split (0: off)
    step_levels: float = 1.5  # levels that step must reach (median over the row)
    step_pairs: int = 8  # MCU pairs across the edges a step needs
    step_spread: float = 3.0  # times their spread elsewhere the pairs of a step may spread (content's edges spread more)
    rejoin_levels: float = 1.0  # levels within which pieces placed at one shift are one run again (< 0: never)
    restep: bool = True  # with a thumbnail, DC steps judged again where the runs were placed
    joinstep: bool = True  # placed runs cut where their joins with the runs above and below both step
    junk_runs: int = 4  # runs after a scan's last long one, mostly empty: data past the photo's end
    junk_after: int = 64  # MCUs a long run holds


@dataclass(frozen=True, kw_only=True)
class ShiftOptions:
    """Placing runs: the shift search and the dynamic programme over the shifts."""

    window: int = 16  # shifts searched either side of the previous run's (MCUs)
    wide_window: int = 4096  # a segment whose end is further off than ``window`` is searched again up to this
    wide_runs: int = 64  # ... when it has at most this many runs (a lost or repeated stretch, not noise)
    refine: int = 5  # best coarse shifts re-costed on every sample
    min_run: int = 3  # the fewest trusted MCUs a run needs to be placed on its own
    thumb_weight: float = 1.0  # weight of the thumbnail's means against the edge steps
    jump_penalty: float = 0.05  # cost per MCU of shift change, in reference continuity costs
    decisive: float = 4.0  # edge cost this many times below every other shift's: the edges alone place the run (0: off)
    wrap_weight: float = 0.5  # weight of a run's own row wraps in its shift search (0: off; see docs/sca.md)
    recheck: bool = True  # runs of a row or less judged again on all four borders once all are placed
    resplit: bool = True  # runs cut where a head or tail joins the content around it better a place or two aside
    rechain: bool = True  # spans of the decode across runs moved back where the rows above and below both say (with resplit)
    unfit: bool = True  # runs that fit nowhere cut where they step most across a vertical MCU edge, searched again
    rewrap: bool = True  # stretches of runs moved where their row wraps agree they belong
    crosscheck: bool = True  # stretches moved to where an SCA without the thumbnail put them, borders allowing


@dataclass(frozen=True, kw_only=True)
class DCOptions:
    """The joint DC fit of all runs (iteratively reweighted least squares)."""

    rounds: int = 4  # reweighting rounds
    scale: float = 1.5  # Cauchy scale of the reweighting (DC steps)
    thumb_weight: float = 1.0  # weight of a run's level against the thumbnail beside its borders
    thumb_bias: float = 0.0  # levels the thumbnail's own level may lie off the photo's, a prior (0: it lies on it)
    link_bias: bool = True  # take the edges' own offset inside runs off every boundary
    range_slack: float = 12.0  # levels past 0..255 a run's samples may reach at its DC (ringing)
    range_rounds: int = 6  # rounds of the fit that add the bounds runs pass
    range_thumb: bool = False  # the bounds also where a thumbnail gives levels
    plateau: bool = True  # a run holding clipped highlights or shadows takes their exact luma DC (sca.plateau)


@dataclass(frozen=True, kw_only=True)
class MaskOptions:
    """What is marked damaged, or marked only as a precaution, after placing."""

    confidence_factor: float = 2.5  # a run is trusted up to this × the reference continuity cost
    confidence_margin: float = 6.0  # ... or the reference cost + this many levels, if more
    level_tolerance: float = 5.0  # DC steps a long run's level may stay off the thumbnail's
    outlier_sigma: float = 8.0  # spreads an MCU's mean must stand out from its run's level
    outlier_levels: float = 24.0  # levels an MCU's mean must stand out from its run's level
    outlier_reach: int = 48  # MCUs from a run's ends that may stand out, where an MCU is under a thumbnail pixel
    garble_before: int = 4  # MCUs decoded before garbage the thumbnail rejects marked
    garble_after: int = 2  # MCUs decoded after garbage the thumbnail rejects marked
    hole_mcus: int = 6  # widest gap of unmarked MCUs between marked ones of a fix marked too
    dilate: int = 2  # pixels the mask grows by (fancy upsampling spreads chroma across)
    clear: bool = True  # lift precautions whose borders join their trusted neighbours (sca.vouch.cleared)
    unsure: bool = True  # runs whose row wraps or borders favour a place aside are precautions (sca.unsure)
    range_levels: float = 4.0  # levels (and one DC step) past 0..255 a run's MCU means may reach
    range_share: float = 0.25  # share of a run's MCUs that may lie past that
    overshoot: int = 1  # MCUs either side (in place order) of one holding a block past 0..255 marked too; -1: none


@dataclass(frozen=True, kw_only=True)
class RefineOptions:
    """The last DC check against the thumbnail (:func:`acir_core.sca.refine.thumbnail_refine`)."""

    rounds: int = 6  # fits at most, while some chunk moved by two steps or more
    exact_sigma: float = 0.5  # levels: a thumbnail whose fit residual spreads more has no say
    max_stderr: float = 0.2  # steps: a chunk pinned this tightly moves by its rounded offset
    big_offset: float = 4.0  # steps: a chunk this far off moves if also big_z errors from 0
    big_z: float = 50.0  # standard errors from 0 that make a far-off chunk sure enough to move
    mixed: float = 0.25  # steps from a whole step that make a tightly fitted chunk hold two offsets
    unfixed_z: float = 4.0  # standard errors of a likely-off chunk too loose to move: damage
    unseen: float = 0.2  # steps: a chunk the thumbnail cannot pin this well is not trusted
    visible_step: float = 0.5  # levels: a DC step finer than this cannot be seen, so a chunk is never unseen for it
    blurred: float = 0.3  # steps: an unseen chunk pinned this well is only a precaution
    blind: float = 0.002  # thumbnail coverage below which an MCU counts as unseen
    blind_reach: int = 6  # MCUs of unseen content marked beside damage, in decode order
    short_span: float = 64.0  # thumbnail pixels a confident fix must span to be shown as sure
    split_reach: int = 3  # MCUs marked either side of a split the fit found
    beside_cover: float = 0.5  # coverage below which an MCU above or below damage is marked
    mixed_nb: bool = True  # mark a mixed chunk's neighbours in its run
    reversal: bool = True  # mark a chunk moved one way and then back


@dataclass(frozen=True, kw_only=True)
class AwareOptions:
    """All of aware SCA's tunables. ``refine=None`` skips the thumbnail DC check."""

    runs: RunOptions = field(default_factory=RunOptions)
    shifts: ShiftOptions = field(default_factory=ShiftOptions)
    dc: DCOptions = field(default_factory=DCOptions)
    mask: MaskOptions = field(default_factory=MaskOptions)
    refine: RefineOptions | None = field(default_factory=RefineOptions)
