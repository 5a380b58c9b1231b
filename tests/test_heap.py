"""acir_core.heap: large buffers kept in the heap between photos."""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys

import pytest

from acir_core.heap import keep_large_buffers

CHILD = """
import ctypes, os, resource, sys, threading
import numpy as np
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: count 4 KiB pages, not huge ones
if sys.argv[1] == "keep":
    from acir_core.heap import keep_large_buffers
    assert keep_large_buffers() and keep_large_buffers()  # the second call does nothing
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def photos():
    before = faults()
    for _ in range(4):
        a = np.ones(64 << 20, np.uint8); del a  # a photo's worth, allocated and freed
    print(faults() - before, end=" ")
def stages():
    def once():  # a stage's planes of several sizes live at once, then one larger than 64 MiB
        planes = [np.ones(s << 20, np.uint8) for s in (40, 24, 40, 8, 48, 30)]
        del planes
        a = np.ones(100 << 20, np.uint8); del a
    once()
    before = faults()
    for _ in range(4):
        once()
    print(faults() - before, end=" ")
a = np.ones(64 << 20, np.uint8); del a  # allocated and freed once before counting
photos()
# as a Beam or Dask worker runs a bundle: in a thread, whose allocations glibc serves from an
# arena of its own (64 MiB heaps, unmapped as they empty) unless the process is held to one
t = threading.Thread(target=stages); t.start(); t.join()
print(os.environ.get("MALLOC_ARENA_MAX", "-"))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_freed_photo_sized_buffer_is_reused_without_page_faults() -> None:
    """Four 64 MiB buffers after the first: each a fresh mapping faulted in page by page by
    default (16 k faults each), reused from the heap with the setting; the same for a stage's
    planes in a thread (a thread arena's 64 MiB heaps are unmapped as they empty, and a plane
    larger than one is mapped afresh), and the processes the worker starts inherit the one-arena
    setting."""
    def run(mode: str) -> list[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True,
                             env=env)
        return out.stdout.split()

    default, kept = run("default"), run("keep")
    assert int(default[0]) > 4 * 10_000 and int(default[1]) > 4 * 20_000
    assert int(kept[0]) < int(default[0]) / 10 and int(kept[1]) < int(default[1]) / 10
    assert default[2] == "-" and kept[2] == "1"


def test_keep_large_buffers_reports_whether_it_took() -> None:
    assert isinstance(keep_large_buffers(), bool)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt >= 0
