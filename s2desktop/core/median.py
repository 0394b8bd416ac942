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


def _invalid_bits(valid: np.ndarray | None) -> np.ndarray | None:
    """65535 where an observation is masked, 0 elsewhere: OR-ed into the keys (cheaper than a masked write)."""
    if valid is None:
        return None
    return (~valid).view(np.uint8).astype(np.uint16) * np.uint16(65535)


def _keys(stack: np.ndarray, invalid_bits: np.ndarray | None) -> np.ndarray:
    """uint16 sort keys: DN - 1 with wrap-around (0 -> 65535), masked observations -> 65535."""
    keys = stack - np.uint16(1)
    if invalid_bits is not None:
        np.bitwise_or(keys, invalid_bits, out=keys)
    return keys


def _pick(keys: np.ndarray, lo_idx: np.ndarray, hi_idx: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """lo_idx, hi_idx: flat positions in the sorted (dates, h, w) keys of each pixel's middle value(s)."""
    n = keys.shape[0]
    if n == 1:
        med = keys[0] + np.uint16(1)  # 65535 (invalid) wraps to 0
    else:
        srt = _sorted_planes(keys).reshape(-1)
        shape = keys.shape[1:]
        lo = srt.take(lo_idx).reshape(shape)  # a flat gather: several times faster than take_along_axis
        hi = srt.take(hi_idx).reshape(shape)
        # (lo + 1 + hi + 1 + 1) // 2: the middle value for odd counts (lo == hi), the mean of the two middle
        # values rounded half up for even counts.
        med = ((lo.astype(np.uint32) + hi + 3) >> 1).astype(np.uint16)
    np.putmask(med, empty, np.uint16(0))
    return med


def _indexes(count: np.ndarray, n: int):
    """Flat indexes into the sorted (n, h, w) keys of the lower and upper middle values; and where none is valid."""
    c = count.astype(np.intp).reshape(-1)
    plane = np.arange(c.size, dtype=np.intp)
    lo_idx = ((np.maximum(c, 1) - 1) >> 1) * c.size + plane
    hi_idx = np.minimum(c >> 1, n - 1) * c.size + plane
    return lo_idx, hi_idx, count == 0


def _validity(stack: np.ndarray, valid) -> np.ndarray | None:
    if valid is None:
        return None
    return np.asarray(valid, dtype=bool) & (stack != 0)


def median_stack(stack: np.ndarray, valid: np.ndarray | None = None, *, return_count: bool = False):
    """Median over axis 0 of a uint16 (dates, h, w) stack, ignoring 0 and pixels where `valid` is False.

    Returns a uint16 (h, w) array (and the uint16 valid count when `return_count`). The input is not modified.
    """
    stack = np.asarray(stack)
    if stack.dtype != np.uint16:
        raise TypeError(f"median_stack expects uint16, got {stack.dtype}")
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    n = stack.shape[0]
    v = _validity(stack, valid)
    count = (stack != 0 if v is None else v).sum(axis=0, dtype=np.uint16)
    lo_idx, hi_idx, empty = _indexes(count, n)
    med = _pick(_keys(stack, _invalid_bits(v)), lo_idx, hi_idx, empty)
    return (med, count) if return_count else med


def median_bands(stacks: np.ndarray, valid: np.ndarray):
    """Medians of several bands sharing one validity: stacks (bands, dates, h, w) uint16, valid (dates, h, w).

    The observations used are those where `valid` is True (callers pass validity already including nonzero
    DNs in every band). Returns ((bands, h, w) uint16 medians, (h, w) uint16 count). The index arithmetic is
    done once for all bands.
    """
    stacks = np.asarray(stacks)
    if stacks.dtype != np.uint16:
        raise TypeError(f"median_bands expects uint16, got {stacks.dtype}")
    valid = np.asarray(valid, dtype=bool)
    n = stacks.shape[1]
    count = valid.sum(axis=0, dtype=np.uint16)
    lo_idx, hi_idx, empty = _indexes(count, n)
    invalid_bits = _invalid_bits(valid)
    out = np.empty((stacks.shape[0],) + stacks.shape[2:], dtype=np.uint16)
    for b in range(stacks.shape[0]):
        out[b] = _pick(_keys(stacks[b], invalid_bits), lo_idx, hi_idx, empty)
    return out, count


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
