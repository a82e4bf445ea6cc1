"""``musdb``: MUSDB18 ``.stem.mp4`` files through musdb/stempeg, the only reader that needs ffmpeg;
:func:`musdb_source` picks it or the wav reader by what the folder holds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from sepkit.data.sources.aligned import AlignedSource
from sepkit.data.sources.base import TrackInfo, TrackSource
from sepkit.errors import SepkitError

MUSDB_STEMS = ("vocals", "drums", "bass", "other")
# Stream order inside a MUSDB18 stem.mp4: mixture, drums, bass, other, vocals.
STREAM = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
MUSDB_HINT = (
    "MUSDB18 comes from https://sigsep.github.io/datasets/musdb.html (stem.mp4) or MUSDB18-HQ from "
    "https://zenodo.org/records/3338373 (wav); point data.root at the folder holding train/ and test/"
)


class MusdbStemSource(TrackSource):
    """MUSDB18: ``root/{train,test}/<Artist - Title>.stem.mp4``, decoded by stempeg (ffmpeg).

    Args:
        root: the folder holding ``train/`` and ``test/``.
        exclude: glob patterns of track names never to use.
    """

    stems = MUSDB_STEMS
    hint = MUSDB_HINT

    def _list(self) -> Iterator[TrackInfo | tuple[str, str]]:
        import stempeg

        for subset in ("train", "test"):
            for path in sorted((self.root / subset).glob("*.stem.mp4")):
                name = path.name[: -len(".stem.mp4")]
                try:
                    info = stempeg.Info(str(path))
                    rate = int(info.sample_rate(0))
                    frames = int(info.duration(0) * rate)
                    channels = int(info.channels(0))
                except Exception as err:
                    yield name, f"{path.name} is unreadable by ffprobe ({str(err).strip()[:200]})"
                    continue
                yield TrackInfo(name, subset, frames, rate, min(channels, 2), (str(path),))

    def _decode(self, track: TrackInfo, streams: list[int], start: int, frames: int | None) -> np.ndarray:
        import stempeg

        try:
            audio, _ = stempeg.read_stems(
                track.files[0],
                stem_id=streams,
                start=start / track.sample_rate if start else None,
                duration=None if frames is None else frames / track.sample_rate,
                always_3d=True,
                dtype=np.float32,
            )
        except Exception as err:
            raise SepkitError(f"cannot decode {track.files[0]}: {str(err).strip()[:300]}") from None
        audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).transpose(0, 2, 1))  # (streams, ch, time)
        if frames is not None:  # ffmpeg may return a frame more or less
            audio = np.pad(audio[..., :frames], ((0, 0), (0, 0), (0, max(0, frames - audio.shape[-1]))))
        return audio

    def read(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        return self._decode(track, [STREAM[s] for s in self.stems], start, frames)

    def read_mixture(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        return self._decode(track, [STREAM["mixture"]], start, frames)[0]

    def read_track(self, track: TrackInfo) -> tuple[np.ndarray, np.ndarray]:
        audio = self._decode(track, [STREAM["mixture"], *(STREAM[s] for s in self.stems)], 0, None)
        return audio[1:], audio[0]


def musdb_hq(root: str | Path, exclude: Sequence[str] = ()) -> AlignedSource:
    """MUSDB18-HQ: ``root/{train,test}/<track>/{mixture,vocals,drums,bass,other}.wav``, read directly."""
    source = AlignedSource(root, stems=list(MUSDB_STEMS), mixture="mixture", exclude=exclude)
    source.hint = MUSDB_HINT
    return source


def musdb_source(root: str | Path, is_wav: bool | None = None, exclude: Sequence[str] = ()) -> TrackSource:
    """MUSDB18 (stem.mp4) or MUSDB18-HQ (wav folders), detected from ``root`` unless ``is_wav`` says.

    Args:
        root: the folder holding ``train/`` and ``test/``.
        is_wav: True for MUSDB18-HQ, False for MUSDB18, None to detect.
        exclude: glob patterns of track names never to use.
    """
    if root is None or str(root).strip() in ("", "None", "???"):
        raise SepkitError(f"data=musdb needs data.root=DIR. {MUSDB_HINT}")
    root = Path(root)
    if is_wav is None:
        is_wav = detect_wav(root)
    return musdb_hq(root, exclude) if is_wav else MusdbStemSource(root, exclude)


def detect_wav(root: Path) -> bool:
    """True for a MUSDB18-HQ folder, False for MUSDB18; a clear error for anything else."""
    if not root.is_dir():
        raise SepkitError(f"data.root={root} does not exist. {MUSDB_HINT}")
    subsets = [root / s for s in ("train", "test") if (root / s).is_dir()]
    if not subsets:
        raise SepkitError(
            f"data.root={root} has neither train/ nor test/ inside, so it is not MUSDB-shaped. {MUSDB_HINT}"
        )
    if any(next(s.glob("*.stem.mp4"), None) for s in subsets):
        return False
    if any((f / "mixture.wav").exists() for s in subsets for f in s.iterdir() if f.is_dir()):
        return True
    raise SepkitError(
        f"data.root={root} has no tracks: expected train/<Artist - Title>.stem.mp4 files (MUSDB18) or "
        f"train/<Artist - Title>/{{mixture,vocals,drums,bass,other}}.wav folders (MUSDB18-HQ). {MUSDB_HINT}"
    )
