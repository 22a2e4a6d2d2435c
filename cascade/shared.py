"""Named numpy arrays in one shared-memory file, for the worker processes of a local cluster.

A sweep on ``--workers`` (a local Dask cluster: processes on this machine) puts the arrays its
kernel reads (the system in the sweep's layout, its start state, the elements) in one file of
``/dev/shm`` and the rows it writes in another; a task carries only the files' layout (names,
offsets, dtypes: a few KB), each worker maps them once (no copy: the pages are the ones this
process wrote, shared like the threads' arrays) and writes its rows in place.  Nothing is
pickled but the layout and nothing is built twice.  Only for processes on this machine (a
remote ``--scheduler`` keeps sending through Dask).

The creator removes the files with :meth:`SharedArrays.close` (mappings made before stay
valid until their arrays are gone); a crash leaves a ``cascade-<pid>-...`` file in
``/dev/shm`` (safe to delete).
"""
from __future__ import annotations

import mmap
import os
import tempfile
import uuid
import weakref

import numpy as np

ALIGN = 64   # bytes: every array starts on a cache line
POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _free(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def _directory(size: int) -> str:
    """``/dev/shm`` when it has room for ``size`` bytes, else the temporary directory (a
    container's ``/dev/shm`` is often 64 MB; writing past a full tmpfs kills the process
    with SIGBUS, so the space is checked here and reserved by the caller)."""
    if os.path.isdir("/dev/shm") and _free("/dev/shm") >= size + (64 << 20):
        return "/dev/shm"
    return tempfile.gettempdir()


class SharedArrays:
    """Arrays packed in one shared file; pickles as its path and layout only.

    Parameters
    ----------
    arrays : dict
        ``{name: array}``; with ``copy`` their values are written to the file, else only
        their shapes and dtypes are used (the file starts zero-filled).
    writable : bool
        Whether the processes that :meth:`attach` it may write (rows); inputs are mapped
        read-only there.
    """

    def __init__(self, arrays: dict, copy: bool = True, writable: bool = False):
        layout, end = {}, 0
        for name, a in arrays.items():
            a = np.asarray(a)
            end = -(-end // ALIGN) * ALIGN
            layout[name] = (end, a.dtype.str, a.shape)
            end += a.nbytes
        self.layout, self.writable = layout, writable
        size = max(end, 1)
        self.path = os.path.join(_directory(size),
                                 f"cascade-{os.getpid()}-{uuid.uuid4().hex}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            if hasattr(os, "posix_fallocate"):   # no room: OSError here, not SIGBUS later
                os.posix_fallocate(fd, 0, size)
            self._map = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            _unlink(self.path)
            raise
        os.close(fd)
        # Removed by close(), else when this object goes (an error before close) or at exit.
        self._remove = weakref.finalize(self, _unlink, self.path)
        self._arrays = self._views(self._map)
        if copy:
            for name, a in arrays.items():
                self._arrays[name][...] = a

    def _views(self, buf) -> dict:
        out = {}
        for name, (offset, dtype, shape) in self.layout.items():
            dtype = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            if count == 0:
                out[name] = np.zeros(shape, dtype)
            else:
                out[name] = np.frombuffer(buf, dtype, count, offset).reshape(shape)
        return out

    @property
    def arrays(self) -> dict:
        """``{name: array}``: the views of this process (the creator's, or :meth:`attach`'s)."""
        if self._arrays is None:
            self.attach()
        return self._arrays

    def attach(self) -> dict:
        """Map the file in this process (another one than the creator); ``{name: array}``."""
        with open(self.path, "r+b" if self.writable else "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # Mapped with its pages at once (MAP_POPULATE, Linux): one call instead of a page
            # fault per 4 KB page as the kernel first reads each.
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if self.writable else 0)
            self._map = mmap.mmap(f.fileno(), size, flags=mmap.MAP_SHARED | POPULATE, prot=prot)
        self._arrays = self._views(self._map)
        return self._arrays

    def close(self) -> None:
        """Remove the file, in the process that made it (its arrays stay valid; so do other
        processes' mappings)."""
        remove = getattr(self, "_remove", None)
        if remove is not None:
            remove()

    def __getstate__(self):
        return {"path": self.path, "layout": self.layout, "writable": self.writable}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._map = self._arrays = None
