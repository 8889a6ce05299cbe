"""Voices for the audio captcha: each character spoken in the app's language by espeak-ng.

The ``captcha`` package's ``AudioCaptcha`` builds its challenge from one recording per
character (8 kHz, 8-bit, mono WAV files in a directory per character), mixed with noise; it
ships English recordings of 0-9 and A-Z only. The apps ask for their user's language
(``locale`` in ``POST /captcha``), so the server records its own, once per language, with
espeak-ng (the speech engine Debian packages: ``apt-get install espeak-ng``), into a directory
beside its data: ``<directory>/<language>/<character>/espeak.wav``.

Without espeak-ng the package's English recordings serve every language, and ``engine`` says
so (the server logs it once at start).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from pathlib import Path

import numpy as np
from captcha.audio import DATA_DIR, WAVE_SAMPLE_RATE

log = logging.getLogger("robert.speech")

LANGUAGES = ("fr", "en", "de", "es", "it", "pt", "ar")
"""The languages the reference's captcha service spoke; anything else is answered in French."""
DEFAULT_LANGUAGE = "fr"
SPEAK_TIMEOUT = 10.0


def language_of(locale: object) -> str:
    """The language of an app's locale ("fr", "fr-FR", "en_GB"...), one we speak."""
    if isinstance(locale, str):
        language = locale.replace("_", "-").split("-", 1)[0].lower()
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


def to_captcha_wave(source: Path, target: Path) -> None:
    """Convert espeak-ng's WAV (22,050 Hz, 16-bit) to what AudioCaptcha mixes: 8 kHz, 8-bit
    unsigned, mono. A moving average over the source samples of one target period keeps the
    band under 4 kHz from folding back (a crude low-pass, plenty for a spoken digit)."""
    with wave.open(str(source)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"expected 16-bit samples, got {8 * width}-bit")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    samples = samples.reshape(-1, channels).mean(axis=1)
    window = max(1, round(rate / WAVE_SAMPLE_RATE))
    smoothed = np.convolve(samples, np.ones(window) / window, mode="same")
    times = np.arange(0, len(smoothed) / rate, 1 / WAVE_SAMPLE_RATE)
    resampled = np.interp(times, np.arange(len(smoothed)) / rate, smoothed)
    peak = float(np.abs(resampled).max()) or 1.0
    eight_bit = np.clip(resampled / peak * 120 + 128, 0, 255).astype(np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(WAVE_SAMPLE_RATE)
        out.writeframes(eight_bit.tobytes())


class Voices:
    """Voice directories for AudioCaptcha, recorded on first use of each language."""

    def __init__(self, directory: Path, engine: str | None = "") -> None:
        """``engine``: the espeak-ng program; "" to look for it on the PATH, None for none."""
        self.directory = directory
        self.engine = shutil.which("espeak-ng") if engine == "" else engine
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Voices({str(self.directory)!r}, engine={self.engine!r})"

    def voicedir(self, language: str, characters: str) -> str:
        """The directory of ``characters`` spoken in ``language`` (recorded now if missing;
        blocking: call it off the event loop). Without an engine, the package's English."""
        if self.engine is None:
            return DATA_DIR
        target = self.directory / language
        done = target / ".complete"
        if not done.exists():
            with self._lock:
                if not done.exists():
                    self._record(language, characters, target)
                    done.touch()
        return str(target)

    def _record(self, language: str, characters: str, target: Path) -> None:
        assert self.engine is not None
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            for char in characters:
                spoken = Path(tmp) / f"{ord(char)}.wav"
                subprocess.run(
                    [self.engine, "-v", language, "-w", str(spoken), "--", char],
                    check=True,
                    capture_output=True,
                    timeout=SPEAK_TIMEOUT,
                )
                final = target / char / "espeak.wav"
                partial = final.with_suffix(".tmp")
                to_captcha_wave(spoken, partial)
                os.replace(partial, final)
        log.info("recorded captcha voices for %r in %s", language, target)
