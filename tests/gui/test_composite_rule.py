"""The composite panel offers the per-pixel rule, and the composite it starts follows it."""

from __future__ import annotations

import rasterio
from PySide6.QtCore import Qt

from s2desktop.core.methods import Median, Medoid, Quantile
from tests.fixtures_gui import inputs_of


def test_the_panel_offers_the_rules_and_composites_with_the_chosen_one(qtbot, main_window, raster_stack, tmp_path):
    panel = main_window.composite_panel
    names = [panel.rule.itemText(i) for i in range(panel.rule.count())]
    assert names[0] == "Median" and panel.method() == Median() and len(names) == 4
    assert all(panel.rule.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(panel.rule.count()))
    out = tmp_path / "c.tif"
    panel.set_inputs(inputs_of(raster_stack(dates=3, size=64)), default_output=out)
    panel.quick.setChecked(False)
    panel.rule.setCurrentIndex(names.index("First quartile"))
    assert panel.method() == Quantile(25)
    panel.rule.setCurrentIndex(names.index("Medoid"))
    with qtbot.waitSignal(panel.compositeReady, timeout=60000):
        panel.start()
    assert panel.method() == Medoid()
    with rasterio.open(out) as ds:
        assert ds.tags()["METHOD"] == "medoid"


def test_the_default_output_name_follows_the_rule_but_a_typed_one_stays(qtbot, main_window, raster_stack,
                                                                       tmp_path):
    panel = main_window.composite_panel
    inputs = inputs_of(raster_stack(dates=2, size=32))
    panel.set_inputs(inputs, default_output=tmp_path / "33UUP_2023-07-01_2023-07-02_median.tif")
    names = [panel.rule.itemText(i) for i in range(panel.rule.count())]
    panel.rule.setCurrentIndex(names.index("First quartile"))
    assert panel.output.text() == str(tmp_path / "33UUP_2023-07-01_2023-07-02_quantile25.tif")
    panel.rule.setCurrentIndex(names.index("Medoid"))
    assert panel.output.text().endswith("_2023-07-02_medoid.tif")
    panel.set_inputs(inputs, default_output=tmp_path / "next_median.tif")  # a new default, named for the rule
    assert panel.output.text() == str(tmp_path / "next_medoid.tif")
    panel.output.setText(str(tmp_path / "mine_median.tif"))  # typed: the user's
    panel.rule.setCurrentIndex(names.index("Median"))
    assert panel.output.text() == str(tmp_path / "mine_median.tif")
