import pytest

from s2desktop.core.baseline import baseline_code, baseline_of, offset_for_baseline
from s2desktop.core.errors import InvalidInputError


def test_baseline_from_names_and_text():
    assert baseline_of("S2B_MSIL1C_20180617T001109_N0206_R073_T55JGF_20180617T013729") == "02.06"
    assert baseline_of("S2A_MSIL2A_20220206T100000_N0400") == "04.00"  # at the end of a name
    assert baseline_of("5.9") == "05.09" and baseline_of(" 04.00 ") == "04.00"
    assert baseline_of("S2B_N02_x") is None and baseline_of(None) is None


def test_code_is_the_inverse():
    assert baseline_code("02.06") == "N0206" and baseline_code("5.1") == "N0501"
    assert baseline_of(f"x_{baseline_code('05.10')}_y") == "05.10"
    with pytest.raises(InvalidInputError, match="is not of the form '02.06'"):
        baseline_code("S2B_MSIL1C_20180617T001109_N0206_R073")


def test_offset_switches_at_04_00_by_baseline_not_date():
    assert [offset_for_baseline(b) for b in ("02.06", "03.99", "04.00", "05.10")] == [0, 0, -1000, -1000]
    assert offset_for_baseline("S2A_MSIL2A_20150704T101006_N0500_R022_T33UUP_x") == -1000  # reprocessed old date
    assert offset_for_baseline(None) is None and offset_for_baseline("unknown") is None
