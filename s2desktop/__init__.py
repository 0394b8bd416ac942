"""s2desktop: pick a Sentinel-2 tile, fetch its bands, composite a cloud-free median and look at it."""

__version__ = "0.1.0"
