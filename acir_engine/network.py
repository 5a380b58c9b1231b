"""The engine's one way to the GCA network (torch): imported lazily, so everything else in acir
works without torch, and a missing module is named instead of reported as "no torch".

The network lives in ``training.infer``, which imports only torch, the architectures and the
checkpoint loader; this is the single place outside ``training`` and the CLI that reaches it."""
from __future__ import annotations

from acir_core.errors import InvalidParameter

RESTORE_STAGES = ("decode", "sca", "gca")
STAGE_CHOICES = ("auto",) + RESTORE_STAGES


def _import_infer():
    """``training.infer``, or an ``InvalidParameter`` naming the module that failed to import."""
    try:
        import training.infer as infer
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        hint = " (pip install 'acir[train]')" if missing.split(".")[0] == "torch" else ""
        raise InvalidParameter(f"the GCA network cannot be loaded: module {missing!r} is missing{hint}") from None
    return infer


def resolve_stage(stage: str, weights: str | None = None) -> str:
    """``auto`` -> ``gca`` when the network imports and weights exist, else ``sca``; ``gca``
    without them is an error that says what is missing; other stages pass through."""
    if stage not in STAGE_CHOICES:
        raise InvalidParameter(f"stage must be one of {', '.join(STAGE_CHOICES)}, got {stage!r}")
    if stage not in ("auto", "gca"):
        return stage
    try:
        infer = _import_infer()
    except InvalidParameter:
        if stage == "gca":
            raise
        return "sca"
    if infer.weights_available(weights or None):
        return "gca"
    if stage == "gca":
        raise InvalidParameter("--stage gca: no GCA weights found" + (f" at {weights}" if weights else
                                                                      " (pass --weights FILE)"))
    return "sca"


def load_network(weights: str | None = None, device: str = "cpu", threads: int = 0):
    """The network as a callable ``(image, thumb_up, region) -> image`` (see
    ``training.infer.GCANetwork``); ``threads`` > 0 sets torch's CPU threads."""
    infer = _import_infer()
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    return infer.GCANetwork(weights or None, device)
