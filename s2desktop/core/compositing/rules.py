"""Per-pixel rules that reduce a window's stack of dates to one value per band.

The rules themselves are small frozen values (`s2desktop.core.methods`: `Median()`, `Quantile(25)`, `Medoid()`,
`Geomedian()`) that travel in the options, the plan and every window task. `reduce(rule, stacks, valid)` applies
one to a window's (bands, dates, h, w) uint16 stacks and (dates, h, w) validity and returns a `Reduced` (values,
count, and for the medoid the date index each pixel came from). The kernels know nothing of files or processes:
the median's and the quantile's are here, the medoid's and the geometric median's in `medoids`.

The median kernel, pure numpy.

`median_bands(stacks, valid)` takes (bands, dates, h, w) uint16 stacks sharing one (dates, h, w) validity and
returns each band's per-pixel median of the valid observations: for an even count the mean of the two middle
values rounded half up, no valid observation -> 0 (`median_stack` is the one-band form).

How it is fast: no per-pixel sort or gather. Each pixel's invalid observations are replaced by as many lowest
(0) as highest (65535) values -- one more highest when their number is odd -- which moves the median of the
valid ones to fixed ranks of all n: rank `hi` of n (n odd) or `lo` (n even) for an odd valid count, the mean of
ranks `lo` and `hi` for an even one, the same two ranks at every pixel. Only the comparators of a Batcher
odd-even merge sorting network that those two ranks depend on run (`selection_network`), as element-wise
`np.minimum`/`np.maximum` on whole planes, in row chunks that stay in the CPU cache. A saturated DN 65535 is a
real value that ties with the highest padding without changing any rank's value; no valid observation at all
comes out 0 by uint16 wrap-around of the same formula. Above `NETWORK_MAX_DATES` dates `np.sort` takes over.

The usual window without a cloud mask has every date valid everywhere or nowhere in it (a date outside its data
footprint): then the median is taken straight from the valid dates' DNs, with no padding at all
(`_median_of_whole_dates`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from s2desktop.core.compositing.medoids import geomedian_bands, medoid_bands
from s2desktop.core.methods import Geomedian, Median, Medoid, Quantile, Rule

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


@lru_cache(maxsize=256)
def selection_network(n: int, ranks: tuple[int, ...]) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators of `sorting_network(n)` that the sorted positions `ranks` depend on, as (i, j, min
    needed, max needed): walking back from the outputs wanted, a comparator counts when one of its outputs is
    needed later, and then both its inputs are. The median of 5 takes 12 min/max passes instead of the
    sort's 18, of 9 dates 40 instead of 56."""
    live = set(ranks)
    steps = []
    for a, b in reversed(sorting_network(n)):
        need_min, need_max = a in live, b in live
        if need_min or need_max:
            steps.append((a, b, need_min, need_max))
            live |= {a, b}
    return tuple(reversed(steps))


def _select_in_place(planes: list[np.ndarray], spare: np.ndarray, steps) -> None:
    """Run `selection_network` steps on `planes` (a list of (h, w) arrays, changed in place; one spare plane):
    afterwards planes[r] holds sorted position r for each rank the network was built for."""
    for a, b, need_min, need_max in steps:
        pa, pb = planes[a], planes[b]
        if need_min and need_max:
            np.minimum(pa, pb, out=spare)
            np.maximum(pa, pb, out=pb)
            planes[a], spare = spare, pa
        elif need_min:
            np.minimum(pa, pb, out=pa)
        else:
            np.maximum(pa, pb, out=pb)


CHUNK_PIXELS = 1 << 15  # the planes of a chunk (dates x 64 KB) stay in the CPU's cache: twice as fast as whole


def median_stack(stack: np.ndarray, valid: np.ndarray | None = None, *, return_count: bool = False):
    """Median over axis 0 of a uint16 (dates, h, w) stack, ignoring 0 and pixels where `valid` is False.

    Returns a uint16 (h, w) array (and the uint16 valid count when `return_count`). The input is not modified.
    """
    stack = np.asarray(stack)
    if stack.dtype != np.uint16:
        raise TypeError(f"median_stack expects uint16, got {stack.dtype}")
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    v = stack != 0 if valid is None else np.asarray(valid, dtype=bool) & (stack != 0)
    med, count = median_bands(stack[np.newaxis], v)
    return (med[0], count) if return_count else med[0]


def median_bands(stacks: np.ndarray, valid: np.ndarray, *, scratch: np.ndarray | None = None):
    """Medians of several bands sharing one validity: stacks (bands, dates, h, w) uint16, valid (dates, h, w).

    The observations used are those where `valid` is True (callers pass validity already including nonzero
    DNs in every band). Returns ((bands, h, w) uint16 medians, (h, w) uint16 count). scratch: an optional
    C-contiguous uint16 (dates + 1, h, w) array to work in, for callers that reuse one across windows (its
    contents are overwritten).
    """
    stacks, valid, count, buf, dates = _prepared(stacks, valid, scratch, "median_bands")
    if dates is not None:
        return _median_of_whole_dates(stacks, dates, buf), count
    return _median_padded(stacks, valid, count, buf), count


def _padded_ranks(band, keep, fill, buf, steps) -> list:
    """One band's dates of a row chunk, the invalid ones replaced by their pads (``band & keep | fill``) in
    ``buf[:n]``, put in order at the ranks ``steps`` serve (or sorted whole): -> the planes, by rank."""
    n = band.shape[0]
    planes = buf[:n]
    np.bitwise_and(band, keep, out=planes)
    np.bitwise_or(planes, fill, out=planes)
    p = list(planes)
    if steps is None:
        planes.sort(axis=0)
    else:
        _select_in_place(p, buf[n], steps)
    return p


def _prepared(stacks, valid, scratch, name: str):
    """-> (stacks uint16, valid bool, per-pixel count, the scratch buffer, the dates valid everywhere or None)."""
    stacks = np.asarray(stacks)
    if stacks.dtype != np.uint16:
        raise TypeError(f"{name} expects uint16, got {stacks.dtype}")
    valid = np.asarray(valid, dtype=bool)
    count = valid.sum(axis=0, dtype=np.uint16)
    buf = _check_scratch(scratch, (stacks.shape[1] + 1,) + stacks.shape[2:])
    return stacks, valid, count, buf, _dates_valid_everywhere(valid, count)


def _median_padded(stacks: np.ndarray, valid: np.ndarray, count: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Per band the median of each pixel's valid observations, by padding (module docstring), chunk by chunk."""
    bands, n = stacks.shape[:2]
    out = np.empty((bands,) + stacks.shape[2:], dtype=np.uint16)
    if n == 1:
        np.multiply(stacks[:, 0], valid[0], out=out)
        return out
    lo, hi = ((n - 3) // 2, (n - 1) // 2) if n % 2 else (n // 2 - 1, n // 2)
    single = hi if n % 2 else lo  # the rank of the median of an odd valid count
    steps = selection_network(n, (lo, hi)) if n <= NETWORK_MAX_DATES else None
    chunks = _row_chunks(stacks.shape[2:])
    keep = np.empty((n, chunks[0][1]) + stacks.shape[3:], dtype=np.uint16)
    fill = np.empty_like(keep)
    for r0, r1 in chunks:
        k, f, b_ = keep[:, : r1 - r0], fill[:, : r1 - r0], buf[:, r0:r1]
        _padding(valid[:, r0:r1], (np.uint16(n) - count[r0:r1]) >> 1, k, f)  # as many low pads as high
        odd = count[r0:r1] & np.uint16(1)
        np.negative(odd, out=odd)  # 65535 where the valid count is odd, else 0
        even = ~odd
        for b in range(bands):
            p = _padded_ranks(stacks[b, :, r0:r1], k, f, b_, steps)
            o = _mean_half_up(p[lo], p[hi], out[b, r0:r1])
            o &= even  # an odd count: its middle value (masks: a copy with `where=` is 50x slower)
            o |= np.bitwise_and(p[single], odd, out=p[lo])
    return out


def _row_chunks(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """(first row, end row) of the chunks of an (h, w) window whose planes stay in the CPU's cache."""
    rows = max(1, CHUNK_PIXELS // max(1, math.prod(shape[1:])))
    return [(r0, min(shape[0], r0 + rows)) for r0 in range(0, shape[0], rows)] or [(0, 0)]


def _mean_half_up(lo: np.ndarray, hi: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``lo + ceil((hi - lo) / 2)`` into ``out``: the mean of two values (hi >= lo), rounded half up, in uint16
    (hi - lo + 1 fits where both are valid DNs >= 1, where the result is used)."""
    np.subtract(hi, lo, out=out)
    out += np.uint16(1)
    out >>= 1
    out += lo
    return out


def _padding(valid: np.ndarray, low_quota: np.ndarray, keep: np.ndarray, fill: np.ndarray) -> None:
    """Per date the planes that turn DNs into padded values, ``DN & keep | fill``: keep 65535 where valid, else
    0; fill 0 where valid, else 0 for the first `low_quota` invalid dates of a pixel and 65535 for the rest."""
    n = valid.shape[0]
    seen = np.zeros(low_quota.shape, dtype=np.uint16)  # invalid dates so far
    high = np.empty(low_quota.shape, dtype=bool)
    for d in range(n):
        invalid = ~valid[d]
        np.copyto(keep[d], valid[d])
        np.negative(keep[d], out=keep[d])  # 1 -> 65535
        np.greater_equal(seen, low_quota, out=high)
        high &= invalid
        np.copyto(fill[d], high)
        np.negative(fill[d], out=fill[d])
        seen += invalid


def _check_scratch(scratch: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """The caller's scratch buffer when it fits `shape`, or a new one (the keys and a spare plane)."""
    if scratch is None:
        return np.empty(shape, dtype=np.uint16)
    if scratch.shape != shape or scratch.dtype != np.uint16 or not scratch.flags.c_contiguous:
        raise ValueError(f"scratch must be a C-contiguous uint16 array of shape {shape}")
    return scratch


def _dates_valid_everywhere(valid: np.ndarray, count: np.ndarray) -> np.ndarray | None:
    """The dates valid at every pixel of the window when every other date is valid at none (the usual window
    without a cloud mask, or with a date outside its footprint), else None."""
    if not count.size or count.min() != count.max() or valid.shape[0] > NETWORK_MAX_DATES:
        return None
    whole = valid.reshape(valid.shape[0], -1).all(axis=1)
    return np.flatnonzero(whole) if whole.sum() == count.flat[0] else None


def _median_of_whole_dates(stacks: np.ndarray, dates: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Per band the median of the planes of `dates` (all valid everywhere): only the comparators the middle
    rank(s) need, on DNs as they are (no padding), chunk by chunk, the same rounding; no date: 0."""
    k = len(dates)
    out = np.zeros((stacks.shape[0],) + stacks.shape[2:], dtype=np.uint16)
    if k == 0:
        return out
    lo, hi = (k - 1) // 2, k // 2
    steps = selection_network(k, (lo, hi))
    for r0, r1 in _row_chunks(stacks.shape[2:]):
        for b in range(stacks.shape[0]):
            planes = list(buf[:k, r0:r1])
            for plane, d in zip(planes, dates):
                np.copyto(plane, stacks[b, d, r0:r1])
            _select_in_place(planes, buf[k, r0:r1], steps)
            if lo == hi:
                np.copyto(out[b, r0:r1], planes[lo])
            else:
                _mean_half_up(planes[lo], planes[hi], out[b, r0:r1])
    return out


def quantile_bands(stacks: np.ndarray, valid: np.ndarray, percent: int, *, scratch: np.ndarray | None = None):
    """Per band the `percent`-th percentile of each pixel's valid observations, as `median_bands` takes them.

    The definition is numpy's default (`np.quantile(method="linear")`): of k sorted valid values, the one at
    rank h = (k - 1) P / 100 interpolated linearly towards the next, here rounded half up -- computed exactly in
    integers (h's fraction is a whole number of hundredths), so quantile:50 is the median to the DN. No valid
    observation: 0. -> ((bands, h, w) uint16, (h, w) uint16 count).

    The same padding as the median's, with other quotas: a pixel with k valid dates gets lo(n) - lo(k) low pads
    (lo(k) = floor((k - 1) P / 100)), which puts its rank lo(k) at rank lo(n) of all n -- the same two ranks at
    every pixel again, so one selection network serves the window.
    """
    stacks, valid, count, buf, dates = _prepared(stacks, valid, scratch, "quantile_bands")
    if dates is not None:
        return _quantile_of_whole_dates(stacks, dates, percent, buf), count
    return _quantile_padded(stacks, valid, count, percent, buf), count


def _quantile_tables(n: int, percent: int) -> tuple[np.ndarray, np.ndarray]:
    """Per valid count k = 0..n: the low pads (lo(n) - lo(k)) and the fraction of the way to the next rank in
    hundredths ((k - 1) P mod 100); k = 0 gets neither."""
    k = np.arange(n + 1, dtype=np.int64)
    h100 = np.maximum(k - 1, 0) * percent
    low = (((n - 1) * percent) // 100 - h100 // 100).astype(np.uint16)
    frac = (h100 % 100).astype(np.uint32)
    low[0] = frac[0] = 0
    return low, frac


def _interpolate(lo: np.ndarray, hi: np.ndarray, frac, out: np.ndarray, wide: np.ndarray) -> np.ndarray:
    """``lo + (frac (hi - lo) + 50) // 100`` into uint16 `out` (the interpolation rounded half up); `wide` a
    uint32 scratch plane; `frac` a uint32 plane or a number of hundredths."""
    np.subtract(hi, lo, out=out)
    np.multiply(out, frac, out=wide, dtype=np.uint32)
    wide += np.uint32(50)
    wide //= np.uint32(100)
    np.add(lo, wide, out=out, casting="unsafe")
    return out


def _quantile_padded(stacks, valid, count, percent: int, buf) -> np.ndarray:
    """Per band the quantile of each pixel's valid observations by padding (`quantile_bands`), chunk by chunk."""
    bands, n = stacks.shape[:2]
    low_table, frac_table = _quantile_tables(n, percent)
    rank = ((n - 1) * percent) // 100
    two = bool(frac_table.any())  # the next rank is needed somewhere
    steps = selection_network(n, (rank, rank + 1) if two else (rank,)) if n <= NETWORK_MAX_DATES else None
    out = np.empty((bands,) + stacks.shape[2:], dtype=np.uint16)
    chunks = _row_chunks(stacks.shape[2:])
    keep = np.empty((n, chunks[0][1]) + stacks.shape[3:], dtype=np.uint16)
    fill = np.empty_like(keep)
    wide = np.empty(keep.shape[1:], dtype=np.uint32)
    for r0, r1 in chunks:
        k, f, b_, c = keep[:, : r1 - r0], fill[:, : r1 - r0], buf[:, r0:r1], count[r0:r1]
        _padding(valid[:, r0:r1], low_table[c], k, f)
        frac = frac_table[c] if two else None
        some = np.negative((c != 0).view(np.uint8), dtype=np.uint16)  # 65535 where any date is valid
        for b in range(bands):
            p = _padded_ranks(stacks[b, :, r0:r1], k, f, b_, steps)
            o = out[b, r0:r1]
            if two:
                _interpolate(p[rank], p[rank + 1], frac, o, wide[: r1 - r0])
            else:
                np.copyto(o, p[rank])
            o &= some
    return out


def _quantile_of_whole_dates(stacks: np.ndarray, dates: np.ndarray, percent: int, buf: np.ndarray) -> np.ndarray:
    """Per band the quantile of the planes of `dates` (all valid everywhere): their DNs as they are."""
    k = len(dates)
    out = np.zeros((stacks.shape[0],) + stacks.shape[2:], dtype=np.uint16)
    if k == 0:
        return out
    rank, frac = divmod((k - 1) * percent, 100)
    steps = selection_network(k, (rank, rank + 1) if frac else (rank,))
    wide = np.empty(stacks.shape[2:], dtype=np.uint32) if frac else None
    for r0, r1 in _row_chunks(stacks.shape[2:]):
        for b in range(stacks.shape[0]):
            planes = list(buf[:k, r0:r1])
            for plane, d in zip(planes, dates):
                np.copyto(plane, stacks[b, d, r0:r1])
            _select_in_place(planes, buf[k, r0:r1], steps)
            if frac:
                _interpolate(planes[rank], planes[rank + 1], np.uint32(frac), out[b, r0:r1], wide[r0:r1])
            else:
                np.copyto(out[b, r0:r1], planes[rank])
    return out


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


# --- a window reduced by a rule ---------------------------------------------------------------------------------


class Reduced(NamedTuple):
    """A window reduced by a rule: (bands, h, w) uint16 values (0: no valid observation), the (h, w) uint16
    count of valid observations, and for a rule that picks one date per pixel the (h, w) uint8 date index."""

    values: np.ndarray
    count: np.ndarray
    chosen: np.ndarray | None = None


def reduce(rule: Rule, stacks: np.ndarray, valid: np.ndarray, scratch: np.ndarray | None = None) -> Reduced:
    """One window's (bands, dates, h, w) uint16 stacks and (dates, h, w) validity reduced by `rule`. scratch:
    the median's and the quantile's optional (dates + 1, h, w) uint16 work array."""
    if isinstance(rule, Median):
        return Reduced(*median_bands(stacks, valid, scratch=scratch))
    if isinstance(rule, Quantile):
        return Reduced(*quantile_bands(stacks, valid, int(rule.percent), scratch=scratch))
    if isinstance(rule, Medoid):
        return Reduced(*medoid_bands(stacks, valid))
    if isinstance(rule, Geomedian):
        return Reduced(*geomedian_bands(stacks, valid, rule.tolerance, rule.max_iterations))
    raise TypeError(f"not a compositing rule: {rule!r}")
