"""Frames to files: the MP4 encoder and the previews (thumbnail, spritesheet)
that local renderers use and the gateway makes for hosted videos' files.
PyAV, numpy and Pillow load with the first module that needs them."""
