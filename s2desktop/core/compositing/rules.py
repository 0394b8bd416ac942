"""Per-pixel rules that reduce a window's stack of dates to one value: today the nodata-aware temporal median.

This is where other rules go (quantiles, least-cloudy, ...): each takes the (bands, dates, h, w) uint16 stacks
and the (dates, h, w) validity of one window, as `median_bands` does, and knows nothing of files or processes.

The median kernel, pure numpy.

`median_stack(stack, valid)` takes a (dates, h, w) uint16 stack and returns the per-pixel median of the valid
observations: for an even count the mean of the two middle values rounded half up, no valid observation -> 0.

How it is fast: invalid observations are set to 0 and every value is shifted down by one with uint16 wrap-around,
so valid DNs 1..65535 become 0..65534 and every invalid one becomes 65535 — nodata sorts to the end while the
saturated DN 65535 (a real value in Sentinel-2) stays distinct from it, all without widening the dtype. The sort
along time is a Batcher odd-even merge sorting network of element-wise `np.minimum`/`np.maximum` on whole
(h, w) planes (a few dozen vectorised passes for typical date counts, instead of a strided per-pixel sort), then
the middle value(s) are picked by each pixel's valid count. Above `NETWORK_MAX_DATES` dates `np.sort` takes over.

The usual window without a cloud mask has every date valid everywhere or nowhere in it (a date outside its data
footprint): then the median is taken straight from the valid dates' DNs by the part of the network the middle
rank(s) depend on (`selection_network`) -- 12 min/max passes for 5 dates instead of 18, and no sort keys.
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


@lru_cache(maxsize=64)
def _network_on_slots(n: int) -> tuple[tuple[tuple[int, int, int], ...], tuple[int, ...]]:
    """The sorting network run in place on a buffer of n + 1 planes: each comparator writes the minimum into the
    spare plane and the maximum over its second input, and the first input's plane becomes the spare. -> the
    (first, second, spare) planes of every comparator, and the plane holding each rank at the end (the same for
    every window, so the pick can index it directly)."""
    plane_of = list(range(n))  # the buffer plane holding sort position i
    spare = n
    steps = []
    for a, b in sorting_network(n):
        pa, pb = plane_of[a], plane_of[b]
        steps.append((pa, pb, spare))
        plane_of[a], spare = spare, pa
    return tuple(steps), tuple(plane_of)


def _rank_planes(n: int) -> tuple[int, ...]:
    """The buffer plane holding each rank after `_sort_in_place`."""
    if n <= 1 or n > NETWORK_MAX_DATES:
        return tuple(range(n))
    return _network_on_slots(n)[1]


def _sort_in_place(buf: np.ndarray, n: int) -> None:
    """Sort the keys in planes 0..n-1 of `buf` (n + 1 planes) along time; ranks land in `_rank_planes(n)`."""
    if n <= 1:
        return
    if n > NETWORK_MAX_DATES:
        buf[:n].sort(axis=0)
        return
    for pa, pb, spare in _network_on_slots(n)[0]:
        np.minimum(buf[pa], buf[pb], out=buf[spare])
        np.maximum(buf[pa], buf[pb], out=buf[pb])


def _invalid_bits(valid: np.ndarray | None) -> np.ndarray | None:
    """65535 where an observation is masked, 0 elsewhere: OR-ed into the keys (cheaper than a masked write)."""
    if valid is None:
        return None
    bits = valid.view(np.uint8).astype(np.uint16)
    bits -= np.uint16(1)  # valid 1 -> 0, masked 0 -> 65535 (wraps)
    return bits


def _keys_into(buf: np.ndarray, stack: np.ndarray, invalid_bits: np.ndarray | None) -> None:
    """Planes 0..n-1 of `buf` <- uint16 sort keys: DN - 1 with wrap-around (0 -> 65535), masked -> 65535."""
    keys = buf[: stack.shape[0]]
    np.subtract(stack, np.uint16(1), out=keys)
    if invalid_bits is not None:
        np.bitwise_or(keys, invalid_bits, out=keys)


def _pick(buf: np.ndarray, n: int, lo_idx, hi_idx) -> np.ndarray:
    """Sort the keys in `buf` and pick each pixel's middle value(s) at the flat positions lo_idx, hi_idx, or,
    when every pixel has the same valid count (`_indexes` gave plane numbers), take those planes whole.

    A pixel with no valid observation has only 65535 keys and comes out 0 by the same wrap-around."""
    shape = buf.shape[1:]
    if n == 1:
        return buf[0] + np.uint16(1)  # 65535 (invalid) wraps to 0
    _sort_in_place(buf, n)
    if isinstance(lo_idx, int):
        lo, hi = buf[lo_idx], buf[hi_idx]
    else:
        flat = buf.reshape(-1)
        lo = flat.take(lo_idx).reshape(shape)  # a flat gather: several times faster than take_along_axis
        hi = flat.take(hi_idx).reshape(shape)
    # In DNs (key + 1): lo + ceil((hi - lo) / 2) -- the middle value for an odd count (lo == hi), the mean of the
    # two middle values rounded half up for an even one -- all in uint16: valid keys are at most 65534 and
    # hi >= lo, so nothing overflows.
    med = hi - lo
    med += np.uint16(1)
    med >>= 1
    med += lo
    med += np.uint16(1)
    return med


@lru_cache(maxsize=8)
def _pixel_index(size: int) -> np.ndarray:
    """0 .. size-1 (intp), kept: windows come in a few sizes, and this is a large array to fill every time."""
    a = np.arange(size, dtype=np.intp)
    a.flags.writeable = False
    return a


def _indexes(count: np.ndarray, n: int):
    """Where the lower and upper middle values are in the sorted (n + 1, h, w) key buffer: flat indexes per
    pixel, or two plane numbers when every pixel has the same valid count (all dates valid across a window is
    the usual case without a cloud mask) -- then the pick is a plane, with no index arrays and no gather."""
    size = count.size
    counts = np.arange(n + 1)
    planes = np.array(_rank_planes(n), dtype=np.intp)
    lo_plane = planes[(np.maximum(counts, 1) - 1) >> 1]  # per valid count: the plane of its lower middle
    hi_plane = planes[np.minimum(counts >> 1, n - 1)]
    if size and count.min() == count.max():
        k = int(count.flat[0])
        return int(lo_plane[k]), int(hi_plane[k])
    lo_start = lo_plane * size
    hi_start = hi_plane * size
    c = count.reshape(-1)
    pixel = _pixel_index(size)
    lo_idx = lo_start[c]
    lo_idx += pixel
    hi_idx = hi_start[c]
    hi_idx += pixel
    return lo_idx, hi_idx


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
    lo_idx, hi_idx = _indexes(count, n)
    buf = np.empty((n + 1,) + stack.shape[1:], dtype=np.uint16)
    _keys_into(buf, stack, _invalid_bits(v))
    med = _pick(buf, n, lo_idx, hi_idx)
    return (med, count) if return_count else med


def median_bands(stacks: np.ndarray, valid: np.ndarray, *, scratch: np.ndarray | None = None):
    """Medians of several bands sharing one validity: stacks (bands, dates, h, w) uint16, valid (dates, h, w).

    The observations used are those where `valid` is True (callers pass validity already including nonzero
    DNs in every band). Returns ((bands, h, w) uint16 medians, (h, w) uint16 count). The index arithmetic is
    done once for all bands. scratch: an optional C-contiguous uint16 (dates + 1, h, w) array for the sort keys,
    for callers that reuse one across windows (its contents are overwritten).
    """
    stacks = np.asarray(stacks)
    if stacks.dtype != np.uint16:
        raise TypeError(f"median_bands expects uint16, got {stacks.dtype}")
    valid = np.asarray(valid, dtype=bool)
    n = stacks.shape[1]
    count = valid.sum(axis=0, dtype=np.uint16)
    dates = _dates_valid_everywhere(valid, count)
    if dates is not None:
        return _median_of_whole_dates(stacks, dates, _check_scratch(scratch, (n + 1,) + stacks.shape[2:])), count
    lo_idx, hi_idx = _indexes(count, n)
    invalid_bits = _invalid_bits(valid)
    buf = _check_scratch(scratch, (n + 1,) + stacks.shape[2:])
    out = np.empty((stacks.shape[0],) + stacks.shape[2:], dtype=np.uint16)
    for b in range(stacks.shape[0]):
        _keys_into(buf, stacks[b], invalid_bits)
        out[b] = _pick(buf, n, lo_idx, hi_idx)
    return out, count


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
    rank(s) need, on DNs as they are (no sort keys), the same rounding as `_pick`; no date: 0."""
    k = len(dates)
    out = np.zeros((stacks.shape[0],) + stacks.shape[2:], dtype=np.uint16)
    if k == 0:
        return out
    lo, hi = (k - 1) // 2, k // 2
    steps = selection_network(k, (lo, hi))
    for b in range(stacks.shape[0]):
        np.take(stacks[b], dates, axis=0, out=buf[:k])
        planes = list(buf[:k])
        _select_in_place(planes, buf[k], steps)
        if lo == hi:
            out[b] = planes[lo]
        else:  # lo + ceil((hi - lo) / 2): valid DNs are >= 1, so hi - lo + 1 fits
            np.subtract(planes[hi], planes[lo], out=out[b])
            out[b] += np.uint16(1)
            out[b] >>= 1
            out[b] += planes[lo]
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
