"""The ``sepkit`` command and the three scripts share these entry functions.

    sepkit train    [overrides]    = python train.py [overrides]
    sepkit evaluate ckpt=PATH ...  = python evaluate.py ckpt=PATH ...
    sepkit separate input=SONG ... = python separate.py input=SONG ...
    sepkit export   ckpt=PATH ...  = python separate.py export=onnx ckpt=PATH ...
    sepkit serve    [ckpt=PATH]    = python separate.py serve=true ...
    sepkit diagnose ckpt=PATH      where a checkpoint's validation error lies (fit, generalisation, band)

Overrides are Hydra's, as for the scripts (``--help``, ``--cfg job``, ``-m`` sweeps, ``--config-dir
DIR`` to add a folder of your own configs). The configs come from the repository's ``conf/`` in a
checkout and from ``sepkit/conf`` in an installed wheel (the same files, mapped at build time);
outputs go under the current folder (``paths.root_dir``), never inside the installation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from omegaconf import DictConfig

from sepkit.errors import SepkitError

USAGE = __doc__.split("\n\n")[1]


def config_dir() -> str:
    """``sepkit/conf`` in an installed wheel, else the checkout's top-level ``conf/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise SystemExit("error: sepkit's configs are missing from this installation; reinstall sepkit")


def config_options(group: str) -> list[str]:
    """The options of a config group, read from the configs (``model`` -> ``openunmix``, ``unet_paper``, ...)."""
    return sorted(p.stem for p in Path(config_dir(), group).glob("*.yaml") if not p.stem.startswith("_"))


def run_train(cfg: DictConfig) -> float | None:
    from sepkit.cli import check_values, report_user_error, run_guarded
    from sepkit.extras import check_config
    from sepkit.training import train

    def checked_train(cfg: DictConfig) -> float | None:
        check_values(cfg)
        check_config(cfg)
        return train(cfg)

    if not in_multirun():
        return run_guarded(checked_train, cfg)
    try:  # a job of a sweep: its failure is its row's, the other jobs still run (sepkit.sweep)
        return checked_train(cfg)
    except Exception as exc:
        from sepkit.sweep import record_failure

        err = report_user_error(exc)
        if err is None:
            raise
        record_failure(cfg, str(err))
        return float("nan")


def in_multirun() -> bool:
    """Whether this run is a job of a Hydra multirun (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_evaluate(cfg: DictConfig) -> None:
    from sepkit.cli import check_required, run_guarded
    from sepkit.evaluation import evaluate
    from sepkit.extras import check_config

    run_guarded(check_required, cfg)
    run_guarded(check_config, cfg)
    run_guarded(evaluate, cfg)


def run_separate(cfg: DictConfig) -> None:
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
        sys.exit(2)


def run_diagnose(cfg: DictConfig) -> None:
    from sepkit.cli import check_required, run_guarded
    from sepkit.diagnose import diagnose

    run_guarded(check_required, cfg)
    run_guarded(diagnose, cfg)


# command -> (config name, entry function, overrides placed before the user's)
COMMANDS: dict[str, tuple[str, Callable[[DictConfig], object], list[str]]] = {
    "train": ("train", run_train, []),
    "evaluate": ("evaluate", run_evaluate, []),
    "separate": ("separate", run_separate, []),
    "export": ("separate", run_separate, ["export=onnx"]),
    "serve": ("separate", run_separate, ["serve=true"]),
    "diagnose": ("diagnose", run_diagnose, []),
}


# settings that hold a path: their values are quoted for Hydra when its grammar would refuse them
PATH_KEYS = ("input", "output", "ckpt", "init", "export_path", "data.root", "paths.root_dir", "ckpt_path", "resume")
HYDRA_FLAGS = ("-", "+", "~")
HYDRA_VALUE_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn", "--cfg", "-c")
HYDRA_VALUE_FLAGS += ("--package", "-p", "--info", "-i", "--experimental-rerun")


@lru_cache(maxsize=1)
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _parses(override: str) -> bool:
    from hydra.errors import HydraException

    try:
        _parser().parse_overrides([override])
    except HydraException:
        return False
    return True


def _quoted(key: str, value: str) -> str:
    """``key='value'`` with Hydra's escapes, or ``key=value`` unchanged when quoting would not read back."""
    override = f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    try:
        if _parser().parse_overrides([override])[0].value() == value:
            return override
    except Exception:  # noqa: BLE001 - an override Hydra cannot read back stays the user's
        pass
    return f"{key}={value}"


def tidy_overrides(command: str, overrides: list[str]) -> list[str]:
    """What a user types, as Hydra reads it: a bare audio file or folder given to ``separate`` becomes
    ``input=...``, a bare ``.ckpt`` given to the other commands ``ckpt=...``, and a path with characters
    Hydra's grammar refuses (accents, ``'``, ``&``, ``(``, ``#``; a comma in an existing file's name)
    is quoted. An argument still unreadable raises :class:`~sepkit.errors.SepkitError` saying how to write it."""
    tidy: list[str] = []
    for i, arg in enumerate(overrides):
        if arg.startswith("-") or (i and overrides[i - 1] in HYDRA_VALUE_FLAGS):
            tidy.append(arg)  # Hydra's own flags and their values (--config-dir DIR, --cfg job, -m)
            continue
        key, eq, value = arg.partition("=")
        if not eq and not arg.startswith(HYDRA_FLAGS):
            from sepkit.audio import AUDIO_EXTENSIONS

            path = Path(arg)
            if command == "separate" and (path.is_dir() or path.suffix.lower() in AUDIO_EXTENSIONS):
                key, eq, value = "input", "=", arg
            elif command != "train" and path.suffix == ".ckpt":
                key, eq, value = "ckpt", "=", arg
        if eq and key in PATH_KEYS and value not in ("", "null") and value[0] not in "'\"":
            if not _parses(f"{key}={value}") or ("," in value and Path(value).exists()):
                arg = _quoted(key, value)
            else:
                arg = f"{key}={value}"
        if not _parses(arg):
            raise SepkitError(
                f"cannot read the argument {arg!r}: write settings as key=value (e.g. input=song.wav), "
                "and quote a value with unusual characters: input='my song (live).wav'"
            )
        tidy.append(arg)
    return tidy


def preflight(overrides: list[str], command: str = "") -> list[str]:
    """The overrides tidied (:func:`tidy_overrides`); stops with one line when one cannot be read, or
    when they ask for a Hydra plugin of an extra that is not installed."""
    from sepkit.extras import MissingExtra, check_overrides

    try:
        overrides = tidy_overrides(command, overrides)
        check_overrides(overrides)
    except (MissingExtra, SepkitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return overrides


def main(argv: list[str] | None = None) -> None:
    """``sepkit COMMAND [overrides]``: compose COMMAND's config with Hydra and run it."""
    import hydra

    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(f"usage: sepkit COMMAND [overrides]\n\n{USAGE}")
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; use one of {', '.join(COMMANDS)}", file=sys.stderr)
        raise SystemExit(2)
    config_name, entry, before = COMMANDS[command]
    rest = preflight(rest, config_name)
    # train: a script that DDP's further ranks can be started with (sepkit/train_entry.py)
    name = str(Path(__file__).with_name("train_entry.py")) if command == "train" else f"sepkit {command}"
    sys.argv = [name, *before, *rest]
    hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)(entry)()
