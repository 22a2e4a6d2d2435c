"""Tasks for tests/test_cluster_store.py, importable by the local cluster's worker processes
(they start with this process's ``sys.path``, tests/ included by conftest.py)."""
import os

import numpy as np

from cascade.cluster import stored


def span_sum(token, lo, hi):
    """Rows ``lo .. hi-1`` of the stored array, with the range and the worker's pid."""
    return lo, hi, np.asarray(stored(token)[lo:hi]).copy(), os.getpid()


def fails(token, lo, hi):
    stored(token)
    raise ValueError(f"bad row {lo}\nsecond line")


def slow_span(token, lo, hi, per_item):
    """:func:`span_sum` that takes ``per_item`` seconds per row (a known rate)."""
    import time

    time.sleep(per_item * (hi - lo))
    return span_sum(token, lo, hi)
