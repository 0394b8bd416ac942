from s2desktop.core.units import human_bytes, human_duration


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 2**20, 3 * 2**30, 2**41)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 MiB", "3.0 GiB", "2.0 TiB"]


def test_human_duration():
    assert [human_duration(s) for s in (-3, 59.4, 75, 3700)] == ["0 s", "59 s", "1 min 15 s", "1 h 01 min"]
