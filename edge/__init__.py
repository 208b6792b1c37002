"""ferlite device runtime: sources, face detectors, the TFLite classifier and sinks.

Nothing here imports TensorFlow; heavy modules are imported lazily by the CLI.
"""

__version__ = "0.1.0"
