"""Features from a user's own video files (``wtal features``): decoding, a Kinetics-400 backbone, extraction.

Imports neither PyAV nor a Jupyter package at import time; PyAV (``pip install 'wtal-kit[video]'``)
is imported on first use by :mod:`wtal_kit.video.decode`.
"""
