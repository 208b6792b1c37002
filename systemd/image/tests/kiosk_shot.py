"""Is QEMU's screendump the kiosk page?  ``kiosk_shot.py SCREEN.ppm OUT.png``: exit 0 and OUT.png written
when it is, 1 otherwise (a black screen, a console, a page still blank), with one line saying what it saw.

The page's right column (the labels now, the shares, the notice) is mostly its background (#111418) with
large light text and at least one label's colour bar."""

from __future__ import annotations

import sys

import cv2
import numpy as np

BACKGROUND_BGR = (24, 20, 17)


def looks_like_the_page(img: np.ndarray) -> tuple[bool, str]:
    right = img[:, img.shape[1] * 6 // 10:].reshape(-1, 3).astype(int)
    background = (np.abs(right - BACKGROUND_BGR).max(1) <= 12).mean()
    light = (right.min(1) >= 180).mean()
    colour = ((right.max(1) - right.min(1)) >= 80).mean()
    seen = f"background {background:.0%}, light text {light:.1%}, colour {colour:.1%} of the right column"
    return bool(background > 0.5 and light > 0.01 and colour > 0.002), seen


def main(argv: list[str]) -> int:
    img = cv2.imread(argv[0])
    if img is None:
        print(f"{argv[0]}: no screendump to read")
        return 1
    ok, seen = looks_like_the_page(img)
    if ok:
        cv2.imwrite(argv[1], img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(("kiosk page: " if ok else "not the kiosk page yet: ") + seen)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
