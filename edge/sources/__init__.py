"""Frame sources: the Pi camera, USB cameras, network streams, video files and photos (``registry.open_source``)."""
