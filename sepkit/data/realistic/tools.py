"""The programs and assets the realistic generator uses, where to find them and their licenses.

Required (instruments=soundfont): Debian's ``fluidsynth`` program and the ``fluid-soundfont-gm``
General MIDI bank, both run as a separate program. Optional: ``espeak-ng`` (GPL-3, run as a separate
program, never linked) speaks the lyrics; without it the voice falls back to sepkit's own formant
syllables.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import shutil
import sys
import types
from functools import cache
from pathlib import Path

from sepkit.errors import SepkitError

log = logging.getLogger(__name__)

# The General MIDI bank of Debian's fluid-soundfont-gm (MIT). default-GM.sf2 is not used: it may
# point at timgm6mb-soundfont, which is GPL-2.
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTALL_HINT = "sudo apt-get install -y fluidsynth fluid-soundfont-gm"

# What the generator runs or reads, how it gets here and under which license (checked by the tests
# against what the code uses). ``required``: the dataset cannot be made without it.
LICENSES: dict[str, dict[str, str | bool]] = {
    "fluidsynth": {"kind": "apt package (program)", "license": "LGPL-2.1-or-later", "required": True},
    "fluid-soundfont-gm": {"kind": "apt package (FluidR3_GM.sf2)", "license": "MIT", "required": True},
    "espeak-ng": {"kind": "apt package (program)", "license": "GPL-3.0-or-later", "required": False},
    "pyworld": {"kind": "PyPI (WORLD vocoder)", "license": "MIT (WORLD: modified BSD)", "required": True},
    "mido": {"kind": "PyPI (MIDI files)", "license": "MIT", "required": True},
    "scipy": {"kind": "PyPI (filters, convolution)", "license": "BSD-3-Clause", "required": True},
}
PERMISSIVE = ("MIT", "BSD", "LGPL")  # what a required part may be under: sepkit itself is MIT


def require_fluidsynth(soundfont: str | Path | None = None) -> tuple[str, Path]:
    """The fluidsynth program and the soundfont; a one-line :class:`SepkitError` naming the missing package."""
    program = shutil.which("fluidsynth")
    bank = Path(soundfont) if soundfont else SOUNDFONT
    missing = [name for name, ok in (("fluidsynth", program), ("fluid-soundfont-gm", bank.is_file())) if not ok]
    if missing:
        found = f" ({bank} not found)" if "fluid-soundfont-gm" in missing and soundfont else ""
        raise SepkitError(
            f"data=synthetic_real needs {' and '.join(missing)}{found}: {INSTALL_HINT} "
            "(or data.source.generate.instruments=additive for sepkit's own instruments)"
        )
    return program, bank


def espeak() -> str | None:
    """The espeak-ng program, or None (the voice then uses formant syllables)."""
    return shutil.which("espeak-ng")


def resolve_phonemes(wanted: str) -> str:
    """``espeak`` when asked for and installed, else ``formant``, saying once why."""
    if wanted == "espeak" and espeak() is None:
        _say_once(
            "espeak-ng is not installed: the built-in singers use formant syllables instead of real phonemes "
            "(sudo apt-get install -y espeak-ng; it is GPL-3 and run as a separate program)"
        )
        return "formant"
    if wanted not in ("espeak", "formant"):
        raise SepkitError(f"data.source.generate.phonemes={wanted}: choose espeak or formant")
    return wanted


@cache
def _say_once(message: str) -> None:
    log.warning(message)


@cache
def pyworld() -> types.ModuleType:
    """Import pyworld, whose 0.3.5 ``__init__`` reads its version through setuptools' removed pkg_resources."""
    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        import pyworld as world

        return world
    stub = types.ModuleType("pkg_resources")
    stub.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
    sys.modules["pkg_resources"] = stub
    try:
        import pyworld as world
    finally:
        del sys.modules["pkg_resources"]
    return world
