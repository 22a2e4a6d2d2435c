"""Memory a run will need, checked before it starts (a huge ``--samples`` is one line, not a
``MemoryError`` traceback after minutes of work)."""
from __future__ import annotations

import os

from .errors import InputError


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), else the
    physical memory, else None when the platform does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:,.0f} {unit}" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:,.1f} PiB"  # not reached


def require_memory(nbytes: float, what: str, option: str | None = "--samples") -> None:
    """Refuse, in one line, a run whose arrays would not fit in 80 % of the available memory.

    Parameters
    ----------
    nbytes : float
        Estimated bytes the run keeps (a lower bound is fine: it only refuses the hopeless).
    what : str
        The run, for the message (``"5,000,000,000 samples"``).
    option : str, optional
        The option to lower, named as the message's place.
    """
    avail = available_memory()
    if avail is not None and nbytes > 0.8 * avail:
        raise InputError(f"{what} would need at least {_size(nbytes)} of memory, more than the "
                         f"{_size(avail)} available: use fewer", option)


def release_memory() -> None:
    """Give back to the system the memory freed while reading and compiling (pyarrow's pool
    and glibc's heap keep it), so that the sweeps' buffers do not come on top of it."""
    import ctypes
    import sys

    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):   # not glibc
        pass
