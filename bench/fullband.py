"""Full-band stems (issue #25): what the engine keeps above 8 kHz, and whether the stems add up.

For a checkpoint, both roads of the engine (full band, the default; the model's band:
``engine.fullband=false``) on
* the checkpoint's own test songs (``evaluate.py``, medians over tracks), and
* the MUSDB18 preview that ships with stempeg (6 s, 44.1 kHz, four stems; accompaniment = the
  other three), when stempeg and ffmpeg are there,
report per target: whole-band SI-SDR, SI-SDR of the bands below and above 8 kHz, the stem's energy
above 8 kHz against its reference's (dB), and the stems' sum against the mixture (dB); beside
them the same for the ideal ratio mask on the grid the model's masks meet the song on (full band),
the ceiling of any magnitude mask there: what a goal for the band above 8 kHz can ask. Then, for
every model of the zoo (``conf/model``, untrained weights: the sum does not depend on them), the
sum error at 22.05, 44.1 and 48 kHz.

    python -m bench.fullband CKPT [--tracks 3]

Writes docs/results/fullband.json and .md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.results import ROOT, write_results
from sepkit.checkpoint import load_separator
from sepkit.evaluation import oracle_irm
from sepkit.inference import SeparationEngine
from sepkit.metrics import sum_error_db, track_metrics
from sepkit.separator import build_separator

ROADS = {"full band": True, "model band": False}
ORACLE = "ideal ratio mask"  # the ceiling of any magnitude mask on the song's own STFT grid
COLUMNS = ["si_sdr", "si_sdr_lo8k", "si_sdr_hi8k", "energy_hi8k", "sum_error_db"]


def own_songs(ckpt: str, tracks: int, fullband: bool) -> dict[str, dict[str, dict[str, float]]]:
    """Medians over the test songs per method (``model``, ``oracle``, ``mixture``) and target."""
    from sepkit.evaluation import evaluate

    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"ckpt={ckpt}",
                f"paths.root_dir={tmp}",
                f"paths.data_dir={ROOT / 'outputs' / 'data'}",
                f"paths.cache_dir={ROOT / 'outputs' / 'cache'}",
                "eval.museval=false",
                f"eval.max_tracks={tracks}",
                f"engine.fullband={str(fullband).lower()}",
            ],
        )
        OmegaConf.set_struct(cfg, False)
        cfg.paths.output_dir = tmp
        return evaluate(cfg)["median"]


def preview(separator, fullband: bool) -> dict[str, dict[str, dict[str, float]]] | None:
    """The stempeg preview (MUSDB order mixture, drums, bass, other, vocals): rows per method
    (``model``, and on the full-band road ``oracle``: the ideal ratio mask on the grid the model's
    masks meet the song on)."""
    try:
        import stempeg

        path = Path(stempeg.__file__).parent / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
        stems, rate = stempeg.read_stems(str(path))
    except Exception as err:  # optional material: say why it is missing
        print(f"stempeg preview unavailable ({type(err).__name__}: {err})")
        return None
    stems = torch.from_numpy(np.asarray(stems, dtype=np.float32)).permute(0, 2, 1)  # (5, channels, time)
    mixture = stems[1:].sum(0)  # the stems' own sum: the AAC mixture differs from it by coding noise
    refs = {"vocals": stems[4], "accompaniment": stems[1:4].sum(0)}
    references = torch.stack([refs[t] for t in separator.targets])
    engine = SeparationEngine(separator, device="cpu", fullband=fullband)
    out = engine.separate(mixture, int(rate))
    methods = {"model": torch.stack([out[t] for t in separator.targets])}
    if fullband:  # the oracle does not depend on the road: main reports it once, beside the full band's
        methods["oracle"] = oracle_irm(mixture, references, int(rate), separator)
    result = {}
    for method, estimates in methods.items():
        rows = track_metrics(estimates, references, int(rate), with_museval=False, with_mel=False, bands=(8000.0,))
        total = sum_error_db(estimates, mixture)
        result[method] = {t: {**row, "sum_error_db": total} for t, row in zip(separator.targets, rows, strict=True)}
    return result


def zoo_sums() -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for name in sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")):
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            model = OmegaConf.to_container(compose("train", overrides=[f"model={name}"]).model, resolve=True)
        torch.manual_seed(0)
        separator = build_separator(model, ["vocals", "accompaniment"]).eval()
        engine = SeparationEngine(separator, device="cpu")
        row = {"model": name}
        for rate in (22050, 44100, 48000):
            mix = torch.from_numpy(rng.standard_normal((2, rate * 10)).astype(np.float32) * 0.2)
            stems = engine.separate(mix, rate)
            row[f"sum_error_db_{rate}"] = sum_error_db(torch.stack(list(stems.values())), mix)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("--tracks", type=int, default=3, help="test songs of the checkpoint's own data")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    separator = load_separator(args.ckpt)
    rows = []
    for road, fullband in ROADS.items():
        for data, methods in (
            (f"own test songs ({args.tracks})", own_songs(args.ckpt, args.tracks, fullband)),
            ("stempeg MUSDB18 preview", preview(separator, fullband)),
        ):
            # the oracle does not depend on the road: its rows once, after the full-band road's
            kinds = [(road, "model")] + ([(ORACLE, "oracle")] if fullband else [])
            for name, method in kinds:
                for target, values in ((methods or {}).get(method) or {}).items():
                    row = {"road": name, "data": data, "target": target, **{c: values.get(c) for c in COLUMNS}}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    sums = zoo_sums()
    ckpt_name = Path(args.ckpt).name
    path = write_results(
        "fullband",
        "Full-band stems: the band above 8 kHz and the stems' sum",
        f"Checkpoint `{ckpt_name}` ({separator.name}, {separator.sample_rate} Hz), both engine roads, and the ideal "
        "ratio mask on the song's own STFT grid (the ceiling of any magnitude mask there). si_sdr: whole band; "
        "si_sdr_lo8k / si_sdr_hi8k: the bands below / above 8 kHz (dB); energy_hi8k: the stem's energy above "
        "8 kHz against its reference's (dB); sum_error_db: the stems' sum against the mixture (error energy over "
        "mixture energy, dB). Own test songs: medians over tracks. The zoo table (untrained weights, 10 s of noise) "
        "is in the JSON file under `zoo_sums`.",
        rows,
        ["road", "data", "target", *COLUMNS],
        f"python -m bench.fullband {args.ckpt} --tracks {args.tracks}",
        zoo_sums=sums,
    )
    md = path.read_text()
    sum_cols = ["model", "sum_error_db_22050", "sum_error_db_44100", "sum_error_db_48000"]
    from bench.results import markdown_table

    path.write_text(
        md
        + "\nEvery model of the zoo, the stems' sum against the mixture (dB):\n\n"
        + markdown_table(sums, sum_cols)
        + "\n"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
