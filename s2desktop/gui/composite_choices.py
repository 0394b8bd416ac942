"""The composite panel's choices of what goes in: the band preset and the cloud mask (which mask, and the buffer
grown around it). Values of the core (`core.bands.PRESETS`, the choices of `core.stack.MASK_CHOICES`,
`core.maskrules`); the panel puts them in the job's request and options."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from s2desktop.core.bands import DEFAULT_PRESET, PRESETS
from s2desktop.core.maskrules import MAX_BUFFER
from s2desktop.gui.band_picker import compact

PRESET_NAMES = {"true-colour": "True colour", "false-colour": "False colour", "swir": "SWIR", "all": "All bands"}
PRESET_TIPS = {"true-colour": "As the eye sees it", "false-colour": "Near infrared as red: vegetation bright red",
               "swir": "Short-wave infrared: burn scars, moisture, bare soil", "all": "Every band of L1C and L2A"}
MASKS = (("auto", "Automatic", "Each scene's own: the scene classification (L2A), else the L1C cloud mask"),
         ("scl", "Scene classification (SCL)", "L2A scenes' classes: no data, defective, cloud shadows, clouds, "
          "cirrus; L1C scenes are left unmasked"),
         ("qi", "L1C cloud mask", "The Level-1C product's own mask (opaque clouds, cirrus); L2A scenes are left "
          "unmasked"),
         ("none", "None", "Every observation counts, clouds included"))


class BandPresetCombo(QComboBox):
    """The bands to composite, by preset: 'True colour (B04, B03, B02)', ..."""

    def __init__(self, parent=None):
        super().__init__(parent)
        compact(self, 14)
        for key, bands in PRESETS.items():
            listed = ", ".join(bands) if len(bands) <= 3 else f"{len(bands)}"
            self.addItem(f"{PRESET_NAMES.get(key, key)} ({listed})", key)
            self.setItemData(self.count() - 1, f"{PRESET_TIPS.get(key, '')}: {', '.join(bands)}",
                             Qt.ItemDataRole.ToolTipRole)
        self.view().setMinimumWidth(self.view().sizeHintForColumn(0) + 24)
        self.setCurrentIndex(self.findData(DEFAULT_PRESET))
        self.setToolTip("The Sentinel-2 bands downloaded and composited (more bands: more to download)")

    def bands(self) -> tuple[str, ...]:
        return PRESETS[self.currentData()]


class MaskFields(QWidget):
    """Which cloud mask, and the buffer in metres grown around what it masks."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.choice = compact(QComboBox(), 9)
        for i, (key, name, tip) in enumerate(MASKS):
            self.choice.addItem(name, key)
            self.choice.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.choice.setToolTip("Which cloud mask leaves observations out")
        self.choice.view().setMinimumWidth(self.choice.view().sizeHintForColumn(0) + 24)
        self.buffer_label = QLabel("buffer")
        self.buffer = QSpinBox()
        self.buffer.setRange(0, int(MAX_BUFFER))
        self.buffer.setSingleStep(10)
        self.buffer.setSuffix(" m")
        self.buffer.setToolTip("Also mask every pixel within this distance of a masked one (cloud edges; "
                               "20 m is two pixels at 10 m)")
        lay.addWidget(self.choice, 1)
        lay.addWidget(self.buffer_label)
        lay.addWidget(self.buffer)
        self.choice.currentIndexChanged.connect(self._choice_changed)
        self.buffer.valueChanged.connect(lambda _v: self.changed.emit())

    def mask(self) -> str:
        return self.choice.currentData()

    def mask_buffer(self) -> float:
        return float(self.buffer.value()) if self.mask() != "none" else 0.0

    def _choice_changed(self) -> None:
        self.buffer.setEnabled(self.mask() != "none")  # nothing masked: nothing to grow
        self.buffer_label.setEnabled(self.buffer.isEnabled())
        self.changed.emit()
