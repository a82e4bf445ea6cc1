"""Evaluate a checkpoint on full tracks: python evaluate.py ckpt=outputs/train/<run>/checkpoints/best.ckpt"""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from sepkit.commands import run_evaluate

    return run_evaluate(cfg)


if __name__ == "__main__":
    from sepkit.commands import preflight

    sys.argv[1:] = preflight(sys.argv[1:], "evaluate")
    main()
