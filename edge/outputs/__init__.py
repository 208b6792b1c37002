"""Where each frame's results go: the expression log, files, annotated media, a window, the console.

Every output is a sink with one verb, ``write(result, frame)`` (plus ``flush`` and ``close``), registered by
name in :data:`registry.SINKS`; the config's ``[outputs]`` lists which ones `ferlite run` and `ferlite
recognize` use, and :func:`registry.open_outputs` builds them into one fan-out. Adding an output is one module
and one registry entry (or, without touching ferlite, a ``"module:Class"`` name in the config).
"""
