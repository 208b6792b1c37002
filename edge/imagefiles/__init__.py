"""Image files checked before they are decoded, for the device and the workstation alike: each file's signature
and header probed (probe, headers, rawformats), read with a size cap and decoded with what libjpeg, libpng and
OpenCV print folded into a one-line reason (imageio, decodelog)."""
