"""The nodata-aware temporal median kernel, pure numpy.

`median_stack(stack, valid)` takes a (dates, h, w) uint16 stack and returns the per-pixel median of the valid
observations: for an even count the mean of the two middle values rounded half up, no valid observation -> 0.

How it is fast: invalid observations are set to 0 and every value is shifted down by one with uint16 wrap-around,
so valid DNs 1..65535 become 0..65534 and every invalid one becomes 65535 — nodata sorts to the end while the
saturated DN 65535 (a real value in Sentinel-2) stays distinct from it, all without widening the dtype. The sort
along time is a Batcher odd-even merge sorting network of element-wise `np.minimum`/`np.maximum` on whole
(h, w) planes (a few dozen vectorised passes for typical date counts, instead of a strided per-pixel sort), then
the middle value(s) are picked by each pixel's valid count. Above `NETWORK_MAX_DATES` dates `np.sort` takes over.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

NETWORK_MAX_DATES = 24


@lru_cache(maxsize=64)
def sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n inputs.

    Built for the next power of two; comparators touching padded positions (>= n) are dropped, which is exact
    because padding behaves as +inf and never moves down.
    """
    size = 1
    while size < n:
        size *= 2
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if (a // (2 * p)) == (b // (2 * p)) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    return tuple(pairs)


def _sorted_planes(keys: np.ndarray) -> np.ndarray:
    n = keys.shape[0]
    if n > NETWORK_MAX_DATES:
        return np.sort(keys, axis=0)
    planes = [keys[i] for i in range(n)]
    for a, b in sorting_network(n):
        lo = np.minimum(planes[a], planes[b])
        np.maximum(planes[a], planes[b], out=planes[b])
        planes[a] = lo
    return np.stack(planes) if n > 1 else keys


def median_stack(
    stack: np.ndarray, valid: np.ndarray | None = None, *, return_count: bool = False
):
    """Median over axis 0 of a uint16 (dates, h, w) stack, ignoring 0 and pixels where `valid` is False.

    Returns a uint16 (h, w) array (and the uint16 valid count when `return_count`). The input is not modified.
    """
    stack = np.asarray(stack)
    if stack.dtype != np.uint16:
        raise TypeError(f"median_stack expects uint16, got {stack.dtype}")
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    n = stack.shape[0]
    if valid is None:
        valid = stack != 0
    else:
        valid = np.asarray(valid, dtype=bool) & (stack != 0)
    # Shift valid 1..65535 -> 0..65534; invalid -> 65535 (sorts last, distinct from saturated DN 65535).
    keys = np.where(valid, stack, 0).astype(np.uint16, copy=False)
    keys -= np.uint16(1)
    count = np.count_nonzero(valid, axis=0).astype(np.uint16)
    if n == 1:
        med = np.where(count > 0, stack[0], 0).astype(np.uint16)
        return (med, count) if return_count else med
    srt = _sorted_planes(keys)
    c = count.astype(np.intp)
    lo_idx = np.maximum(c - 1, 0) // 2
    hi_idx = c // 2
    hi_idx = np.minimum(hi_idx, n - 1)
    lo = np.take_along_axis(srt, lo_idx[np.newaxis], axis=0)[0].astype(np.uint32) + 1
    hi = np.take_along_axis(srt, hi_idx[np.newaxis], axis=0)[0].astype(np.uint32) + 1
    odd = (c & 1).astype(bool)
    med = np.where(odd, lo, (lo + hi + 1) >> 1)
    med[c == 0] = 0
    med = med.astype(np.uint16)
    return (med, count) if return_count else med


def reference_median(stack: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """np.nanmedian with the project's rounding rule (half up) and 0 for no valid observation — for tests."""
    stack = np.asarray(stack)
    if valid is None:
        valid = stack != 0
    else:
        valid = valid & (stack != 0)
    f = np.where(valid, stack.astype(np.float64), np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmedian(f, axis=0)
    m = np.floor(m + 0.5)
    return np.where(np.isnan(m), 0, m).astype(np.uint16)
