"""``synthetic``: the built-in songs, generated on first use, read like MUSDB18-HQ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sepkit.data.sources.aligned import AlignedSource
from sepkit.data.sources.musdb import MUSDB_STEMS
from sepkit.data.synthetic import SyntheticConfig, ensure_dataset


class SyntheticSource(AlignedSource):
    """The built-in dataset in the MUSDB18-HQ layout, (re)generated into ``root`` by :meth:`prepare`.

    Args:
        root: where the songs live.
        generate: :class:`~sepkit.data.synthetic.SyntheticConfig` fields (tracks, seconds, ...).
        exclude: glob patterns of track names never to use.
    """

    hint = (
        "the built-in dataset is generated there by train.py when the folder is missing; "
        "delete a damaged one to regenerate it"
    )

    def __init__(self, root: str | Path, generate: Mapping, exclude: Sequence[str] = ()) -> None:
        super().__init__(root, stems=list(MUSDB_STEMS), mixture="mixture", exclude=exclude)
        self.generate = SyntheticConfig(**generate)

    def prepare(self) -> None:
        ensure_dataset(self.root, self.generate)
        self._tracks = None
