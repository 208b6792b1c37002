"""Align a detected face by its eyes and crop it, with a margin, to the classifier's input."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ferlite.edge.config import ClassifierConfig
from ferlite.edge.results import Face

#: Fraction of the face box added on each side of the crop (FER2013 faces fill the frame from brow to chin).
DEFAULT_MARGIN = ClassifierConfig.margin


def eye_angle(face: Face) -> float:
    """Angle in degrees of the line between the eyes (0 when level or without landmarks)."""
    eyes = face.eyes
    if eyes is None:
        return 0.0
    (rx, ry), (lx, ly) = eyes  # right eye is on the image's left
    return math.degrees(math.atan2(ly - ry, lx - rx))


def align_crop(image: np.ndarray, face: Face, size: int = 48, margin: float = DEFAULT_MARGIN,
               grey: bool = True, align: bool = True) -> np.ndarray:
    """One affine warp: rotate about the box centre so the eyes are level, scale the box (plus margin)
    to ``size`` x ``size``, and return a grey (or BGR) uint8 crop. Pixels outside the image replicate the border."""
    import cv2

    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    side = max(w, h) * (1 + 2 * margin)
    angle = eye_angle(face) if align else 0.0
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    crop = cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    if grey and crop.ndim == 3:  # the crop, not the whole image, changes colour
        return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    if not grey and crop.ndim == 2:
        return cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    return crop
