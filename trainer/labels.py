"""The one expression vocabulary, and the spellings that map onto it."""

from __future__ import annotations

from ferlite.errors import DatasetError

#: FER2013's seven classes in its own index order, then contempt (FER+ and some other sets).
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
FER2013_LABELS: tuple[str, ...] = LABELS[:7]

_SYNONYMS = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
    "contempt": "contempt",
    "contemptuous": "contempt",
}


def normalize_label(name: str) -> str:
    """Map a common spelling (``Happiness``, ``anger``, ``SURPRISED``) onto the vocabulary."""
    key = str(name).strip().lower()
    try:
        return _SYNONYMS[key]
    except KeyError:
        raise DatasetError(f"unknown expression label {name!r}; known: {', '.join(LABELS)}") from None


def parse_label_list(text: str) -> list[str]:
    """Parse ``"happy,surprise"`` (or ``all``) into normalized labels, keeping order."""
    if text.strip().lower() == "all":
        return list(FER2013_LABELS)
    out: list[str] = []
    for part in text.split(","):
        if part.strip():
            label = normalize_label(part)
            if label not in out:
                out.append(label)
    if not out:
        raise DatasetError("no expressions given")
    return out
