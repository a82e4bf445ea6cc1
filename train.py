"""Train a separator: python train.py [model=unet_paper] [trainer=gpu] [data=musdb data.root=DIR] ..."""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from sepkit.commands import run_train

    return run_train(cfg)


if __name__ == "__main__":
    from sepkit.commands import preflight

    sys.argv[1:] = preflight(sys.argv[1:], "train")
    main()
