"""Evaluate a checkpoint on full tracks: python evaluate.py ckpt=outputs/train/<run>/checkpoints/best.ckpt"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from sepkit.cli import check_required, run_guarded
    from sepkit.evaluation import evaluate

    run_guarded(check_required, cfg)
    run_guarded(evaluate, cfg)


if __name__ == "__main__":
    main()
