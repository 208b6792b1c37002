"""Keras -> TFLite conversion (int8, float16) and conversion checks."""
