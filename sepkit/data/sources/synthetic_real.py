"""``synthetic_real``: the realistic built-in songs, generated on first use, read like MUSDB18-HQ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sepkit.data.realistic.generator import RealisticConfig, ensure
from sepkit.data.sources.aligned import AlignedSource
from sepkit.data.sources.musdb import MUSDB_STEMS


class SyntheticRealSource(AlignedSource):
    """Songs with sampled instruments, sung phonemes and a mix (:mod:`sepkit.data.realistic`), in ``root``.

    Args:
        root: where the songs live.
        generate: :class:`~sepkit.data.realistic.generator.RealisticConfig` fields (tracks, seconds,
            the ingredient switches, ...).
        workers: generation processes (null: one per core); the songs do not depend on it.
        exclude: glob patterns of track names never to use.
    """

    hint = (
        "the realistic built-in dataset is generated there by train.py when the folder is missing; "
        "delete a damaged one to regenerate it"
    )

    def __init__(
        self, root: str | Path, generate: Mapping, workers: int | None = None, exclude: Sequence[str] = ()
    ) -> None:
        super().__init__(root, stems=list(MUSDB_STEMS), mixture="mixture", exclude=exclude)
        self.generate = RealisticConfig(**generate)
        self.workers = workers

    def prepare(self) -> None:
        ensure(self.root, self.generate, self.workers)
        self._tracks = None
