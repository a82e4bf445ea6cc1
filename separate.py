"""Separate audio files into stems: python separate.py ckpt=PATH input=song.mp3 [output=DIR]"""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="separate")
def main(cfg: DictConfig) -> None:
    from sepkit.cli import check_required, run_guarded
    from sepkit.separation import separate_files

    run_guarded(check_required, cfg)
    if cfg.export:
        from sepkit.separation import export_checkpoint

        run_guarded(export_checkpoint, cfg)
        return
    if cfg.serve:
        from sepkit.web import serve

        run_guarded(serve, cfg)
        return
    failed = run_guarded(separate_files, cfg)
    if failed:
        print(f"error: {failed} file(s) failed, see above", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
