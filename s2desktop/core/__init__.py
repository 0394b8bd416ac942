"""The engine: search, download, composite, raster attributes and rendering.

Pure Python with numpy, rasterio and boto3. Nothing here imports Qt; the GUI and the CLI both call in, and the
core reports back only through return values and callbacks.
"""
