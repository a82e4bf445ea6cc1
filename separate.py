"""Separate audio files into stems: python separate.py ckpt=PATH input=song.mp3 [output=DIR]"""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="separate")
def main(cfg: DictConfig) -> None:
    from sepkit.commands import run_separate

    return run_separate(cfg)


if __name__ == "__main__":
    from sepkit.commands import preflight

    sys.argv[1:] = preflight(sys.argv[1:], "separate")
    main()
