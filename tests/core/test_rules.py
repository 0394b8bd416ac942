"""The median kernel against np.nanmedian (with the half-up rounding rule and 0 for no valid observation)."""

import numpy as np
import pytest

from s2desktop.core.compositing.rules import (
    median_bands,
    median_stack,
    _select_in_place,
    reference_median,
    selection_network,
    sorting_network,
)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8, 11, 16, 24])
def test_sorting_network_sorts(n):
    rng = np.random.default_rng(n)
    for _ in range(200):
        x = list(rng.integers(0, 6, n))
        for a, b in sorting_network(n):
            assert a < b < n
            if x[a] > x[b]:
                x[a], x[b] = x[b], x[a]
        assert x == sorted(x)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 16, 24])
def test_selection_network_gives_the_middle_ranks(n):
    # only the comparators the middle rank(s) depend on, some of them halves (min or max only), run in place
    rng = np.random.default_rng(n)
    x = rng.integers(0, 6, (n, 50, 40)).astype(np.uint16)  # many ties
    x[:, 0] = np.arange(n)[::-1, None]  # reversed order
    ranks = ((n - 1) // 2, n // 2)
    steps = selection_network(n, ranks)
    assert len(steps) <= len(sorting_network(n))
    planes = [p.copy() for p in x]
    _select_in_place(planes, np.empty_like(x[0]), steps)
    expected = np.sort(x, axis=0)
    for r in ranks:
        np.testing.assert_array_equal(planes[r], expected[r])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 9, 12, 30])
def test_matches_nanmedian_with_nodata_and_masks(n):
    rng = np.random.default_rng(100 + n)
    stack = rng.integers(1, 12000, size=(n, 64, 64)).astype(np.uint16)
    stack[rng.random(stack.shape) < 0.25] = 0  # nodata
    stack[rng.random(stack.shape) < 0.01] = 65535  # saturated is a value, not nodata
    stack[:, :4, :] = 0  # all-nodata rows
    mask = rng.random(stack.shape) > 0.2
    med, count = median_stack(stack, mask, return_count=True)
    assert med.dtype == np.uint16
    np.testing.assert_array_equal(med, reference_median(stack, mask))
    np.testing.assert_array_equal(count, ((stack != 0) & mask).sum(axis=0))
    assert (med[:4] == 0).all() and (count[:4] == 0).all()


def test_even_count_rounds_half_up_and_odd_picks_middle():
    s = np.array([[[10]], [[11]], [[0]], [[0]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 11  # (10 + 11) / 2 = 10.5 -> 11
    s = np.array([[[10]], [[12]], [[0]], [[30]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 12
    s = np.array([[[65535]], [[65535]], [[0]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 65535  # no overflow in the mean, saturated kept
    s = np.array([[[65534]], [[65535]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 65535


def test_single_date_and_all_nodata():
    s = np.array([[[0, 5, 65535]]], dtype=np.uint16)
    np.testing.assert_array_equal(median_stack(s), [[0, 5, 65535]])
    np.testing.assert_array_equal(median_stack(s, np.array([[[True, False, True]]])), [[0, 0, 65535]])
    z = np.zeros((5, 3, 3), dtype=np.uint16)
    med, count = median_stack(z, return_count=True)
    assert not med.any() and not count.any()


def test_input_not_modified_and_dtype_checked():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 100, (5, 8, 8)).astype(np.uint16)
    before = s.copy()
    median_stack(s, rng.random(s.shape) > 0.5)
    np.testing.assert_array_equal(s, before)
    with pytest.raises(TypeError):
        median_stack(s.astype(np.float32))


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_median_bands_shares_validity(n):
    rng = np.random.default_rng(7 + n)
    stacks = rng.integers(0, 3000, size=(3, n, 40, 40)).astype(np.uint16)
    stacks[rng.random(stacks.shape) < 0.05] = 65535
    valid = (stacks != 0).all(axis=0) & (rng.random((n, 40, 40)) > 0.3)
    med, count = median_bands(stacks, valid)
    assert med.shape == (3, 40, 40) and med.dtype == np.uint16
    np.testing.assert_array_equal(count, valid.sum(axis=0))
    for b in range(3):
        np.testing.assert_array_equal(med[b], reference_median(stacks[b], valid))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 9])
@pytest.mark.parametrize("case", ["all valid", "one date masked", "two dates masked", "none valid", "saturated"])
def test_windows_with_one_valid_count_everywhere(n, case):
    # the usual window without a cloud mask: every pixel has the same count, and the pick takes whole planes
    rng = np.random.default_rng(n)
    stacks = rng.integers(1, 12000, size=(3, n, 48, 40)).astype(np.uint16)
    valid = np.ones((n, 48, 40), dtype=bool)
    if case == "one date masked":
        valid[n // 2] = False
    elif case == "two dates masked":
        valid[[0, n - 1]] = False
    elif case == "none valid":
        valid[:] = False
    elif case == "saturated":
        stacks[:, :, :10] = 65535
    med, count = median_bands(stacks, valid)
    for b in range(3):
        np.testing.assert_array_equal(med[b], reference_median(stacks[b], valid))
    np.testing.assert_array_equal(median_stack(stacks[0], valid), med[0])
    mixed = valid.copy()  # the same window with one pixel's validity changed takes the padded path
    mixed[0, 0, 0] = not mixed[0, 0, 0]
    med, _ = median_bands(stacks, mixed)
    for b in range(3):
        np.testing.assert_array_equal(med[b], reference_median(stacks[b], mixed))


def test_median_bands_sorts_in_a_given_scratch_buffer():
    rng = np.random.default_rng(3)
    stacks = rng.integers(1, 5000, size=(3, 5, 30, 20)).astype(np.uint16)
    valid = rng.random((5, 30, 20)) > 0.3
    scratch = np.full((6, 30, 20), 7, dtype=np.uint16)
    med, count = median_bands(stacks, valid, scratch=scratch)
    ref_med, ref_count = median_bands(stacks, valid)
    np.testing.assert_array_equal(med, ref_med)
    np.testing.assert_array_equal(count, ref_count)
    assert not (scratch == 7).all()  # the padded values were sorted there
    for bad in (np.empty((5, 30, 20), np.uint16), np.empty((6, 30, 20), np.int32),
                np.empty((6, 30, 40), np.uint16)[:, :, ::2]):
        with pytest.raises(ValueError, match="scratch"):
            median_bands(stacks, valid, scratch=bad)


@pytest.mark.parametrize("n", [3, 5, 30])
def test_chunks_of_rows_give_the_same_medians(n, monkeypatch):
    """Windows are reduced a few rows at a time (cache-sized chunks): a last chunk shorter than the others, and
    both paths (padded, whole dates) in chunks, give what the reference gives."""
    from s2desktop.core.compositing import rules

    rng = np.random.default_rng(20 + n)
    stacks = rng.integers(1, 12000, size=(3, n, 23, 16)).astype(np.uint16)
    mixed = rng.random((n, 23, 16)) > 0.4
    whole = np.zeros((n, 23, 16), dtype=bool)
    whole[: n // 2 + 1] = True
    monkeypatch.setattr(rules, "CHUNK_PIXELS", 5 * 16)  # 5 rows per chunk: 4 chunks of 5 and one of 3
    for valid in (mixed, whole):
        med, count = median_bands(stacks, valid)
        np.testing.assert_array_equal(count, valid.sum(axis=0))
        for b in range(3):
            np.testing.assert_array_equal(med[b], reference_median(stacks[b], valid))
