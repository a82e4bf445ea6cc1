"""Check the documentation: every runnable command composes, every relative link resolves.

``python -m sepkit.docs_check`` (``make docs-check``, part of ``make test``) reads ``README.md`` and
every ``docs/**/*.md``, prints one line per failure (``file:line: what``) and exits 1 if there is any.

**Runnable commands.** A line of a fenced code block whose language is ``bash`` is checked when,
after leading ``NAME=value`` environment settings and a ``nice`` / ``taskset -c CPUS`` wrapper, it
starts with ``python train.py``, ``python evaluate.py``, ``python separate.py`` or ``sepkit
train|evaluate|separate|export|serve|diagnose``. Other lines (``make``, ``python -m bench.X``, ``pip``) are
not commands of the configs and are left alone. A line ending in a backslash continues on the next;
``&&``, ``;``, ``|`` and a trailing ``&`` separate commands. A line that ends with the comment
``# not checked`` is skipped (a config folder of your own, a placeholder experiment). Checking
means composing the command's config in-process with Hydra's compose API against ``conf/`` (config
``train``, ``evaluate`` or ``separate``; ``sepkit export`` adds ``export=onnx`` and ``sepkit serve``
``serve=true``, as :data:`sepkit.commands.COMMANDS` does), with the Hydra config included so that
``hydra.*`` overrides are checked too. Before that:

* placeholders in angle brackets (``<run>``, ``<timestamp>``) become a dummy word; values such as
  ``ckpt=PATH`` or ``input=song.mp3`` are only strings to the config and need nothing;
* the Hydra flags ``-m`` / ``--multirun``, ``--cfg X``, ``--package X``, ``--resolve``, ``--info``,
  ``--help`` and ``--config-dir X`` (also in their short forms) are dropped; any other flag is a
  failure;
* a sweep (``optimizer.lr=1e-3,3e-4``, ``choice(...)``, ``range(...)``) is checked with its first value.

Composing finds unknown groups and options (``model=foo``), keys the config does not have
(``data.foo=1``: use ``+`` / ``++`` to add one) and malformed overrides; it does not run anything,
so paths and data need not exist.

**Links.** Every link ``[text](target)``, image ``![alt](target)`` and reference definition
``[name]: target`` outside code must resolve to an existing file or folder, relative to the page
(or to the repository root for a target starting with ``/``), and a ``#fragment`` into a Markdown
page (or ``#fragment`` alone, into the page itself) must be the anchor GitHub gives one of its
headings. Links with a scheme (``https:``, ``mailto:``) are not followed. In a git checkout the
target must also not be git-ignored, so nothing links to a local run's ``outputs/``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_CHECKED = "# not checked"
SCRIPTS = {"train.py": "train", "evaluate.py": "evaluate", "separate.py": "separate"}
PYTHONS = ("python", "python3", ".venv/bin/python")
SEPARATORS = ("&&", "||", ";", "|", "&")
# Hydra flags dropped before composing: flag -> whether it takes a value.
HYDRA_FLAGS = {
    "-m": False,
    "--multirun": False,
    "--resolve": False,
    "--help": False,
    "-h": False,
    "--hydra-help": False,
    "--info": False,
    "-i": False,
    "--cfg": True,
    "-c": True,
    "--package": True,
    "-p": True,
    "--config-dir": True,
    "-cd": True,
}
RUNNABLE_WORD = re.compile(
    r"\b(train|evaluate|separate)\.py\b|\bsepkit\s+(train|evaluate|separate|export|serve|diagnose)\b"
)
PLACEHOLDER = re.compile(r"<[^<>\s]+>")
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
INLINE_CODE = re.compile(r"(`+).+?\1")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Command:
    """A runnable command found in a page: where it is and the config it composes."""

    line: int
    text: str
    config: str
    overrides: tuple[str, ...]


def markdown_files(root: Path = ROOT) -> list[Path]:
    """README.md and every page under docs/, in a stable order."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def split_fences(text: str) -> Iterator[tuple[str | None, int, str]]:
    """Each line of a page as (language of its fenced code block, or None outside code, number, line)."""
    fence, lang = "", ""
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if not fence and match:
            fence, lang = match.group(1), match.group(2).lower()
        elif fence and line.strip() and not line.strip().strip(fence[0]) and len(line.strip()) >= len(fence):
            fence = ""
        else:
            yield (lang if fence else None), number, line


def code_blocks(text: str) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    """Fenced code blocks as (language, [(line number, line), ...])."""
    block: list[tuple[int, str]] = []
    lang = None
    for line_lang, number, line in [*split_fences(text), (None, 0, "")]:
        if block and (line_lang is None or number != block[-1][0] + 1):
            yield lang or "", block
            block = []
        if line_lang is not None:
            lang = line_lang
            block.append((number, line))


def shell_lines(lines: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Join backslash continuations: (number of the first line, the whole command line)."""
    start, parts = 0, []
    for number, line in lines:
        if not parts:
            start = number
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        yield start, " ".join(p.strip() for p in parts)
        parts = []
    if parts:
        yield start, " ".join(p.strip() for p in parts)


def strip_wrappers(tokens: list[str]) -> list[str]:
    """Drop leading ``NAME=value`` settings and a ``nice [-n N]`` / ``taskset -c CPUS`` wrapper."""
    while True:
        if tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", tokens[0]):
            tokens = tokens[1:]
        elif tokens[:1] == ["nice"]:
            tokens = tokens[3:] if tokens[1:2] == ["-n"] else tokens[1:]
        elif tokens[:2] == ["taskset", "-c"]:
            tokens = tokens[3:]
        else:
            return tokens


def command_of(tokens: list[str]) -> tuple[str, list[str], list[str]] | None:
    """(config name, overrides placed first, the user's arguments) of a runnable command, else None."""
    from sepkit.commands import COMMANDS

    tokens = strip_wrappers(tokens)
    if len(tokens) >= 2 and tokens[0] in PYTHONS and tokens[1] in SCRIPTS:
        return SCRIPTS[tokens[1]], [], tokens[2:]
    if len(tokens) >= 2 and tokens[0] == "sepkit" and tokens[1] in COMMANDS:
        config, _entry, before = COMMANDS[tokens[1]]
        return config, list(before), tokens[2:]
    return None


def commands(text: str) -> Iterator[Command | tuple[int, str, str]]:
    """The runnable commands of a page's ``bash`` blocks; a (line, text, reason) for one that cannot be read."""
    from sepkit.commands import tidy_overrides
    from sepkit.errors import SepkitError

    for lang, lines in code_blocks(text):
        if lang != "bash":
            continue
        for number, line in shell_lines(lines):
            if line.rstrip().endswith(NOT_CHECKED):
                continue
            try:
                tokens = shlex.split(PLACEHOLDER.sub("x", line), comments=True)
            except ValueError as exc:
                if RUNNABLE_WORD.search(line):
                    yield number, line.strip(), f"cannot split the line: {exc}"
                continue
            segment: list[str] = []
            for token in [*tokens, ";"]:
                if token not in SEPARATORS:
                    segment.append(token)
                    continue
                found = command_of(segment) if segment else None
                segment = []
                if found is None:
                    continue
                config, before, args = found
                try:
                    overrides = parse_arguments(tidy_overrides(config, args))  # as the commands tidy them
                except SepkitError as exc:
                    overrides = str(exc)
                if isinstance(overrides, str):
                    yield number, line.strip(), overrides
                else:
                    yield Command(number, line.strip(), config, (*before, *overrides))


def parse_arguments(args: list[str]) -> list[str] | str:
    """The overrides to compose (Hydra flags dropped, sweeps at their first value), or why not."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    overrides, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):  # overrides never start with '-'
            flag = arg.split("=", 1)[0]
            if flag not in HYDRA_FLAGS:
                return f"unknown flag {arg}"
            skip = HYDRA_FLAGS[flag] and "=" not in arg
            continue
        try:
            override = parser.parse_override(arg)
        except Exception as exc:  # Hydra's grammar errors come as several exception types
            return f"bad override {arg!r}: {first_line(exc)}"
        if override.is_sweep_override():
            try:
                first = next(iter(override.sweep_string_iterator()))
            except Exception as exc:
                return f"cannot take the first value of the sweep {arg!r}: {first_line(exc)}"
            arg = f"{override.get_key_element()}={first}"
        overrides.append(arg)
    return overrides


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def compose_failures(found: list[Command], conf_dir: Path) -> dict[Command, str]:
    """Compose each command's config in-process; the first line of the error of each that fails."""
    from hydra import compose, initialize_config_dir

    failures: dict[Command, str] = {}
    seen: dict[tuple[str, tuple[str, ...]], str | None] = {}
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3", job_name="docs_check"):
        for command in found:
            key = (command.config, command.overrides)
            if key not in seen:
                try:
                    compose(command.config, overrides=list(command.overrides), return_hydra_config=True)
                    seen[key] = None
                except Exception as exc:  # any composition error is a failure to report
                    seen[key] = first_line(exc)
            if seen[key] is not None:
                failures[command] = seen[key]
    return failures


def link_targets(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link, image and reference definition outside code."""
    for lang, number, line in split_fences(text):
        if lang is not None:
            continue
        plain = INLINE_CODE.sub("", line)
        for link in INLINE_LINK.finditer(plain):
            yield number, link.group(1)
        reference = REFERENCE_LINK.match(plain)
        if reference:
            yield number, reference.group(1)


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings (a repeated heading gets -1, -2, ... as on GitHub)."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for lang, _number, line in split_fences(text):
        heading = HEADING.match(line) if lang is None else None
        if heading:
            base = slug(heading.group(1))
            found.add(f"{base}-{counts[base]}" if base in counts else base)
            counts[base] = counts.get(base, 0) + 1
    return found


def ignored_by_git(paths: list[Path], root: Path) -> set[Path]:
    """Those of ``paths`` that git ignores (none outside a git checkout or without git)."""
    inside = [p for p in paths if p.is_relative_to(root)]
    if not inside:
        return set()
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "--stdin"],
            input="\n".join(str(p.relative_to(root)) for p in inside),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    if result.returncode not in (0, 1):  # 128: not a git checkout
        return set()
    return {(root / line).resolve() for line in result.stdout.splitlines() if line}


def link_failures(text: str, page: Path, root: Path) -> list[tuple[int, str]]:
    """(line, reason) for each relative link of ``text`` (the content of ``page``) that does not
    resolve: a missing or git-ignored file, or a ``#fragment`` that is no heading of a Markdown page."""
    failures, existing = [], []
    for number, target in link_targets(text):
        if SCHEME.match(target):
            continue
        path_part, _, fragment = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        if path_part:
            resolved = (
                (root / path_part.lstrip("/")) if path_part.startswith("/") else (page.parent / path_part)
            ).resolve()
            if not resolved.exists():
                failures.append((number, f"broken link {target}"))
                continue
            existing.append((number, target, resolved))
            target_text = resolved.read_text(encoding="utf-8") if resolved.suffix == ".md" else ""
        else:
            resolved, target_text = page, text  # #fragment: a heading of this page
        if fragment and resolved.suffix == ".md" and fragment.lower() not in anchors(target_text):
            failures.append((number, f"no heading for the anchor of {target}"))
    ignored = ignored_by_git([r for _n, _t, r in existing], root.resolve())
    failures += [(n, f"link into a git-ignored path {t}") for n, t, r in existing if r in ignored]
    return sorted(failures)


def check_text(text: str, page: Path, root: Path = ROOT, conf_dir: Path | None = None) -> list[str]:
    """The failures of one page's text, as ``page:line: reason`` lines."""
    return check_pages({page: text}, root, conf_dir)


def check_pages(pages: dict[Path, str], root: Path = ROOT, conf_dir: Path | None = None) -> list[str]:
    """The failures of several pages (path -> text), commands composed in one Hydra session."""
    from sepkit.commands import config_dir

    conf_dir = conf_dir or Path(config_dir())
    failures: list[tuple[Path, int, str]] = []
    found: list[tuple[Path, Command]] = []
    for page, text in pages.items():
        for item in commands(text):
            if isinstance(item, Command):
                found.append((page, item))
            else:
                failures.append((page, item[0], f"{item[1]}: {item[2]}"))
        failures += [(page, n, reason) for n, reason in link_failures(text, page, root)]
    composed = compose_failures([c for _p, c in found], conf_dir)
    failures += [(page, c.line, f"{c.text}: {composed[c]}") for page, c in found if c in composed]
    return [f"{display(page, root)}:{line}: {reason}" for page, line, reason in sorted(failures)]


def display(page: Path, root: Path) -> str:
    try:
        return str(page.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(page)


def check(root: Path = ROOT) -> list[str]:
    """The failures of README.md and docs/**/*.md under ``root``."""
    return check_pages({page: page.read_text(encoding="utf-8") for page in markdown_files(root)}, root)


def main() -> int:
    if not (ROOT / "README.md").is_file():
        print(f"error: no README.md in {ROOT}: run the check in a sepkit checkout", file=sys.stderr)
        return 2
    failures = check()
    for failure in failures:
        print(failure)
    pages = len(markdown_files())
    if failures:
        print(f"docs-check: {len(failures)} failure(s) in {pages} page(s)", file=sys.stderr)
        return 1
    print(f"docs-check: {pages} page(s), commands compose and links resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
