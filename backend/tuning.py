"""Process-wide tuning for StyleTex's own entry points (command line, demo, benchmarks, server).

The renderer allocates and frees many tensors of a few megabytes per view. glibc serves blocks
above its mmap threshold with fresh mappings and returns them on free, so every such tensor costs
page faults; on the 2-core reference machine that was 15-35 % of rasterization time. Raising the
thresholds keeps freed memory in the heap for reuse. Library users who import the backend are
left alone: only the executables call this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit on 64-bit systems
_TRIM_THRESHOLD = 1024 * 1024 * 1024


def tune_allocator() -> bool:
    """Raises glibc's mmap and trim thresholds; returns False where that does not apply."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    return mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok
