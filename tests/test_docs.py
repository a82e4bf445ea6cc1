"""The documentation check (sepkit/docs_check.py): the pages pass it, the README stays a guide, and
the check catches bad commands and links."""

import shutil
import subprocess
from pathlib import Path

import pytest

from sepkit.docs_check import ROOT, check, check_text

README_MAX_LINES = 300

PAGE = """# A page

Links: [data](data.md), [its heading](data.md#the-data), [here](#a-page), [web](https://example.org),
[missing](missing.md), [no such heading](data.md#nowhere).

```bash
python train.py -m model=unet_stereo optimizer.lr=1e-3,3e-4   # a sweep: its first values
python train.py experiment=builtin ++trainer.max_steps=6 hydra.run.dir=outputs/train/x --cfg job
OMP_NUM_THREADS=1 taskset -c 0 python evaluate.py ckpt=outputs/train/<run>/checkpoints/best.ckpt split=all
sepkit serve web.port=7861
python train.py data.foo=1
python train.py model=foo && sepkit export ckpt=x.ckpt model=unet_paper
python separate.py input=song.wav --bogus
python train.py model=nope   # not checked
python -m bench.quality --budget 60
```

`python train.py model=inline` in prose is not a command to check.
"""


def test_docs_pass() -> None:
    failures = check()
    assert not failures, "\n".join(failures)


def test_readme_is_a_guide() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_check_catches_bad_overrides_and_links(tmp_path: Path) -> None:
    (tmp_path / "data.md").write_text("# The data\n", encoding="utf-8")
    failures = check_text(PAGE, tmp_path / "page.md", root=tmp_path)
    assert failures == [
        "page.md:4: broken link missing.md",
        "page.md:4: no heading for the anchor of data.md#nowhere",
        "page.md:11: python train.py data.foo=1: Could not override 'data.foo'.",
        "page.md:12: python train.py model=foo && sepkit export ckpt=x.ckpt model=unet_paper: "
        "Could not override 'model'. No match in the defaults list.",
        "page.md:12: python train.py model=foo && sepkit export ckpt=x.ckpt model=unet_paper: "
        "In 'train': Could not find 'model/foo'",
        "page.md:13: python separate.py input=song.wav --bogus: unknown flag --bogus",
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_check_refuses_links_into_ignored_files(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("outputs/\n", encoding="utf-8")
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "run.md").write_text("# A local run\n", encoding="utf-8")
    (tmp_path / "kept.md").write_text("# Kept\n", encoding="utf-8")
    page = "[a run](outputs/run.md) and [kept](kept.md)\n"
    assert check_text(page, tmp_path / "page.md", root=tmp_path) == [
        "page.md:1: link into a git-ignored path outputs/run.md"
    ]
