"""acir_core.heap: large buffers kept in the heap between photos."""
from __future__ import annotations

import platform
import resource
import subprocess
import sys

import pytest

from acir_core.heap import keep_large_buffers

CHILD = """
import ctypes, resource, sys
import numpy as np
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: count 4 KiB pages, not huge ones
if sys.argv[1] == "keep":
    from acir_core.heap import keep_large_buffers
    assert keep_large_buffers() and keep_large_buffers()  # the second call does nothing
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(64 << 20, np.uint8); del a  # a photo's worth, allocated and freed once
before = faults()
for _ in range(4):
    a = np.ones(64 << 20, np.uint8); del a
print(faults() - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_freed_photo_sized_buffer_is_reused_without_page_faults() -> None:
    """Four 64 MiB buffers after the first: each a fresh mapping faulted in page by page by
    default (16 k faults each), reused from the heap with the setting."""
    def run(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    default, kept = run("default"), run("keep")
    assert default > 4 * 10_000
    assert kept < default / 10


def test_keep_large_buffers_reports_whether_it_took() -> None:
    assert isinstance(keep_large_buffers(), bool)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt >= 0
