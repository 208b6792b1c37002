"""ferlite's device runtime, folder by folder in the order a frame travels:

    sources/         -> frames from a Pi camera, USB camera, stream, video or photos
    detection/       -> faces found (YuNet, Haar, BlazeFace), aligned by the eyes and cropped
    classification/  -> the int8 TFLite expression classifier
    tracking.py      -> faces followed across frames, probabilities smoothed
    outputs/         -> the SQLite log, csv, json, annotated images and video, crops, the live window

``pipeline.py`` runs one frame through these stages; ``build.py`` makes every part from the one validated
config (``config.py``, defaults in ``data/default.toml``); ``results.py`` holds the typed results. The front
ends are ``recognize.py``, ``bench.py`` and ``service/`` (``ferlite run`` and ``ferlite check``).
Nothing here imports TensorFlow.
"""
