"""ferlite: facial-expression recognition for small devices.

One import name, four parts: ``ferlite.cli`` (the ``ferlite`` command), ``ferlite.edge`` (the device runtime:
source -> detect -> align/crop -> classify -> track/smooth -> outputs; never imports TensorFlow),
``ferlite.trainer`` (the workstation: import, capture, faces, train, evaluate) and ``ferlite.converters``
(Keras -> TFLite). Nothing heavy is imported here.
"""

__version__ = "0.1.0"
