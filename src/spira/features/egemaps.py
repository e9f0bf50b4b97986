"""eGeMAPSv02 functionals of a whole recording (Eyben et al. 2016), computed by openSMILE.

88 functionals (pitch, jitter, shimmer, loudness, HNR, formants, spectral slopes, rates of
voiced segments) per recording: the classical baseline of respiratory-audio benchmarks.
Featurize writes them as one window of one frame per file (`windows.WholeFileSpec`), so
training, evaluation and serving read them as any features. openSMILE is the `opensmile`
extra (`pip install -e '.[opensmile]'`; its licence excludes commercial use) and is imported
only when these features are computed. No torch: serving uses this module as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spira.errors import UserError

FEATURE_SET = "eGeMAPSv02"
FEATURE_LEVEL = "Functionals"
NUM_FUNCTIONALS = 88


class OpenSmileMissingError(UserError, ImportError):
    """features=egemaps without the opensmile extra."""


def smile() -> Any:
    """openSMILE's eGeMAPSv02 functionals extractor (its binary and configs ship with the package)."""
    try:
        import opensmile
    except ImportError:
        raise OpenSmileMissingError(
            "features=egemaps needs openSMILE: pip install -e '.[opensmile]' (its licence allows research use and excludes commercial use)"
        ) from None
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)


def opensmile_version() -> str | None:
    try:
        import opensmile
    except ImportError:
        return None
    return str(opensmile.__version__)


class EgemapsExtractor:
    """Recording -> (1, 1, 88) float32 eGeMAPSv02 functionals, openSMILE made on first use
    (and again in each worker process: it is not pickled)."""

    num_features = NUM_FUNCTIONALS

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self._smile: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "_smile": None}

    def functionals(self, samples: np.ndarray) -> np.ndarray:
        """(88,) float32 functionals of mono samples at `sample_rate`."""
        if self._smile is None:
            self._smile = smile()
        values = self._smile.process_signal(np.ascontiguousarray(samples, dtype=np.float32), self.sample_rate).to_numpy(dtype=np.float32)
        if values.shape != (1, NUM_FUNCTIONALS):
            raise ValueError(f"openSMILE returned {values.shape} functionals, expected (1, {NUM_FUNCTIONALS})")
        return values[0]

    def file_windows(self, samples: np.ndarray, spec: Any = None) -> tuple[np.ndarray, int]:
        """The whole recording as one window of one frame, and 0 padded samples (featurize's interface)."""
        return self.functionals(samples)[None, None, :], 0


def contract_settings() -> dict[str, Any]:
    """What model.json records of this front end besides its name and rate."""
    return {"feature_set": FEATURE_SET, "feature_level": FEATURE_LEVEL, "opensmile_version": opensmile_version()}
