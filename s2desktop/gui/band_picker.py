"""The viewer's band combination: which three bands of a multi-band raster show as red, green and blue.

Any raster with three bands or more, not only ours: a preset (true colour, false colour, SWIR) where the bands'
descriptions name the Sentinel-2 bands it needs (`core.display_bands`), or any three bands by index in the
R, G, B combos. Choosing emits `bandsChosen` with the 1-based indexes; the viewer reads them.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from s2desktop.core.bands import PRESETS
from s2desktop.core.display_bands import DISPLAY_PRESETS, band_name, preset_indexes

PRESET_LABELS = {"true-colour": "True colour", "false-colour": "False colour", "swir": "SWIR"}
CUSTOM = "custom"
CHANNELS = ("R", "G", "B")


class BandPicker(QWidget):
    """A preset combo and three band combos (R, G, B); hidden for a raster of fewer than three bands."""

    bandsChosen = Signal(tuple)  # 1-based band indexes shown as R, G, B

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 6, 0)
        lay.addWidget(QLabel("Bands"))
        self.preset = compact(QComboBox(), 10)
        self.preset.setToolTip("Band combination: a preset where the bands are named (B04, B08, ...), or any three")
        self.preset.activated.connect(lambda _i: self._preset_picked())
        lay.addWidget(self.preset)
        self.channels: list[QComboBox] = []
        for name in CHANNELS:
            label = QLabel(name)
            label.setToolTip(f"The band shown in {dict(R='red', G='green', B='blue')[name]}")
            combo = compact(QComboBox(), 7)
            combo.setToolTip(label.toolTip())
            combo.activated.connect(lambda _i: self._channel_picked())
            lay.addWidget(label)
            lay.addWidget(combo)
            self.channels.append(combo)
        lay.addStretch(1)
        self._descriptions: list[str | None] = []
        self.setVisible(False)

    def set_raster(self, count: int, descriptions: Sequence[str | None], shown: Sequence[int]) -> None:
        """A raster's bands, and the indexes shown (without emitting)."""
        self._descriptions = list(descriptions) + [None] * (count - len(descriptions))
        wanted = count >= 3 and len(shown) == 3
        self.setVisible(wanted)
        if not wanted:
            return
        for combo in self.channels:
            combo.blockSignals(True)
            combo.clear()
            for i, d in enumerate(self._descriptions, 1):
                combo.addItem(_band_label(i, d), i)
                combo.setItemData(i - 1, d or f"band {i}", Qt.ItemDataRole.ToolTipRole)
            combo.blockSignals(False)
        self.preset.blockSignals(True)
        self.preset.clear()
        for key in DISPLAY_PRESETS:
            self.preset.addItem(PRESET_LABELS[key], key)
            self.preset.setItemData(self.preset.count() - 1, ", ".join(PRESETS[key]), Qt.ItemDataRole.ToolTipRole)
            if preset_indexes(key, self._descriptions) is None:  # not in this raster: shown, not offered
                self.preset.model().item(self.preset.count() - 1).setEnabled(False)
        self.preset.addItem("Custom", CUSTOM)
        self.preset.blockSignals(False)
        for combo in (self.preset, *self.channels):  # the open list shows its items whole
            combo.view().setMinimumWidth(combo.view().sizeHintForColumn(0) + 24)
        self._show(tuple(shown))

    def shown(self) -> tuple[int, ...]:
        return tuple(int(c.currentData()) for c in self.channels)

    def choose_preset(self, key: str) -> bool:
        """Show a preset (as if picked); False when the raster lacks its bands."""
        indexes = preset_indexes(key, self._descriptions)
        if indexes is None:
            return False
        self._show(indexes)
        self.bandsChosen.emit(indexes)
        return True

    def choose(self, indexes: Sequence[int]) -> None:
        """Show any three bands (as if picked in the combos)."""
        self._show(tuple(indexes))
        self.bandsChosen.emit(self.shown())

    def _show(self, indexes: tuple[int, ...]) -> None:
        for combo, i in zip(self.channels, indexes):
            combo.setCurrentIndex(combo.findData(i))
        match = next((k for k in DISPLAY_PRESETS if preset_indexes(k, self._descriptions) == indexes), CUSTOM)
        self.preset.setCurrentIndex(self.preset.findData(match))

    def _preset_picked(self) -> None:
        key = self.preset.currentData()
        if key == CUSTOM or not self.choose_preset(key):
            self._show(self.shown())  # 'Custom' alone changes nothing: the combos say what is shown

    def _channel_picked(self) -> None:
        self.choose(self.shown())


def _band_label(index: int, description: str | None) -> str:
    """'4 · B04' (a description naming a Sentinel-2 band: the whole one is the item's tip), '2 · near infrared',
    or the index alone."""
    name = band_name(description)
    text = (description or "").strip()
    if name:
        return f"{index} · {name}"
    return f"{index} · {text}" if text else str(index)


def compact(combo: QComboBox, chars: int) -> QComboBox:
    """A combo about ``chars`` characters wide, whatever its items (its list shows them whole)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo
