"""ferlite workstation side: import data sets, capture, extract faces, train and evaluate.

Modules import only the standard library at import time; pandas, scikit-learn and TensorFlow
are imported inside the functions that need them.
"""
