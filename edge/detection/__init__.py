"""Detect faces (YuNet, Haar, BlazeFace; region search on video) and align/crop them for the classifier."""
