"""MFCC features for MLPerf Tiny's keyword spotter, computed with numpy from spoken keywords.

    .venv/bin/python benchmarks/kws_features.py tests/data/public_models/kws_tts_mfcc.npz

No speech dataset installs from the package registry, and nothing may download one. So the
words are spoken by espeak-ng (Debian package ``espeak-ng``, a formant synthesizer: real
words, synthetic voices), the ten MLPerf keywords in several voices, speeds and pitches,
each placed in a 1 s clip at 16 kHz with a little noise, plus silent clips. Features follow
MLPerf Tiny's KWS preprocessing (``get_dataset.py``: 30 ms Hann windows every 20 ms, a 512-point
FFT magnitude, 40 mel bins from 20 Hz to 4 kHz, log(mel + 1e-6), the first 10 DCT-II
coefficients as ``tf.signal.mfccs_from_log_mel_spectrograms`` scales them): [N, 49, 10, 1] (stored float16),
labels in MLPerf's order (:data:`LABELS`). The file written is committed (tests need no espeak-ng);
this script remakes it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_")
RATE = 16000
FRAME, STEP, FFT, MELS, COEFFS = 480, 320, 512, 40, 10
VOICES = ("en-us", "en", "en-us+f3", "en+m3", "en-us+m7", "en+f2")
SPEEDS = (130, 165)
PITCHES = (35, 60)


def _mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def mel_matrix(bins: int = FFT // 2 + 1, low: float = 20.0, high: float = 4000.0) -> np.ndarray:
    """``tf.signal.linear_to_mel_weight_matrix(MELS, bins, RATE, low, high)`` in numpy: [bins, MELS]."""
    freqs = np.linspace(0.0, RATE / 2, bins)[1:]  # TF drops the DC bin
    spec_mel = _mel(freqs)[:, None]
    edges = np.linspace(_mel(np.float64(low)), _mel(np.float64(high)), MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((spec_mel - lower) / (center - lower), (upper - spec_mel) / (upper - center)))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


def mfcc(audio: np.ndarray) -> np.ndarray:
    """[49, 10] MFCCs of a 1 s, 16 kHz float clip in [-1, 1] (MLPerf Tiny KWS preprocessing)."""
    audio = np.asarray(audio, dtype=np.float32)[:RATE]
    audio = np.pad(audio, [0, RATE - len(audio)])
    count = 1 + (RATE - FRAME) // STEP
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)).astype(np.float32)  # periodic Hann
    frames = np.stack([audio[i * STEP : i * STEP + FRAME] * window for i in range(count)])
    magnitude = np.abs(np.fft.rfft(frames, n=FFT)).astype(np.float32)
    log_mel = np.log(magnitude @ mel_matrix() + 1e-6)
    n = np.arange(MELS)
    basis = np.cos(np.pi * (n[None, :] + 0.5) * np.arange(COEFFS)[:, None] / MELS)  # DCT-II
    return (2.0 * log_mel @ basis.T / np.sqrt(2.0 * MELS)).astype(np.float32)


def _speak(word: str, voice: str, speed: int, pitch: int, folder: Path) -> np.ndarray:
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    path = folder / "w.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
        check=True,
        capture_output=True,
    )
    rate, data = wavfile.read(path)
    audio = data.astype(np.float32) / 32768.0
    return resample_poly(audio, RATE, rate).astype(np.float32)


def make(seed: int = 0):
    """(features [N, 49, 10, 1], labels [N]) from espeak-ng's keywords and silent clips."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label, word in enumerate(LABELS[:10]):
            for voice in VOICES:
                for speed in SPEEDS:
                    for pitch in PITCHES:
                        speech = _speak(word, voice, speed, pitch, Path(tmp))[:RATE]
                        clip = (rng.standard_normal(RATE) * 0.003).astype(np.float32)
                        start = int(rng.integers(0, RATE - len(speech) + 1))
                        clip[start : start + len(speech)] += speech * float(rng.uniform(0.5, 1.0))
                        x.append(mfcc(clip))
                        y.append(label)
    for _ in range(24):
        x.append(mfcc((rng.standard_normal(RATE) * rng.uniform(0.0005, 0.01)).astype(np.float32)))
        y.append(LABELS.index("_silence_"))
    return np.stack(x)[..., None].astype(np.float32), np.asarray(y, dtype=np.int64)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "kws_tts_mfcc.npz")
    x, y = make()
    order = np.random.default_rng(1).permutation(len(x))
    # float16 keeps the committed file small (its step at |x| < 64 is 0.03, a twentieth of the int8
    # reference's input scale); read it back with .astype(np.float32)
    np.savez_compressed(out, x=x[order].astype(np.float16), y=y[order].astype(np.int8))
    print(f"wrote {out}: {len(x)} clips, features {x.shape[1:]}, labels {', '.join(LABELS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
