"""Classify a face crop: the TFLite expression model, its sidecar and the interpreter that runs it."""
