# sepkit: `make train` and `make test` set everything up from scratch (a .venv beside this file).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The tested versions of everything (torch and torchaudio included): constraints.txt. For another
# platform or CUDA build: make install TORCH_SPEC="torch==X torchaudio==Y" CONSTRAINTS=
CONSTRAINTS ?= constraints.txt
TORCH_SPEC ?= torch torchaudio
PIP_INSTALL = $(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
ARGS ?=
# make test runs the suite on one pytest-xdist worker per core (at most 4; each worker holds its own
# torch and generated data): TEST_WORKERS=1 for one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
# What `make train` trains (conf/experiment/): builtin = the CPU recipe on the realistic built-in songs.
EXPERIMENT ?= builtin

.PHONY: install constraints train test test-slow lint docs-check bench bench-quality serve bundled clean system-deps browser-deps sound-deps

install: $(STAMP)

# System programs, none needed to install sepkit: ffmpeg (data=musdb reads stem.mp4 files through it),
# fluidsynth + fluid-soundfont-gm (the built-in songs of make train: required there), espeak-ng (GPL-3,
# optional: sung phonemes). make test installs what it can (root with apt) and skips, with the
# reason, the tests that need what is still missing.
SYSTEM_PACKAGES := ffmpeg fluidsynth fluid-soundfont-gm espeak-ng
have-system = command -v ffmpeg >/dev/null 2>&1 && command -v fluidsynth >/dev/null 2>&1 && \
	test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 && command -v espeak-ng >/dev/null 2>&1

system-deps:
	@$(have-system) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(SYSTEM_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(SYSTEM_PACKAGES) >/dev/null || echo "could not install them; the tests that need them will be skipped" >&2; \
	  else \
	    echo "note: not all of $(SYSTEM_PACKAGES) are installed (sudo apt-get install -y $(SYSTEM_PACKAGES)); tests that need them are skipped" >&2; \
	  fi; }

# make train renders the built-in songs: fluidsynth and its General MIDI bank are required there.
sound-deps: system-deps
	@command -v fluidsynth >/dev/null 2>&1 && test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 || { \
	  echo "the built-in songs need fluidsynth and fluid-soundfont-gm: sudo apt-get install -y fluidsynth fluid-soundfont-gm espeak-ng" >&2; exit 1; }

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) $(TORCH_SPEC)
	$(PIP_INSTALL) -e ".[dev]"
	touch $(STAMP)

# Pin what .venv holds now as the tested versions (after a deliberate upgrade, with make test green).
constraints: install
	{ head -2 constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

train: install sound-deps
	$(PY) train.py experiment=$(EXPERIMENT) $(ARGS)

test: install system-deps
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist worksteal $(ARGS)

# Every runnable command in README.md and docs/ composes against conf/, every relative link resolves
# (what counts as runnable: sepkit/docs_check.py). make test runs the same check (tests/test_docs.py).
docs-check: install
	$(PY) -m sepkit.docs_check

browser-deps:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "the browser test needs Debian's chromium and chromium-driver: sudo apt-get install -y chromium chromium-driver" >&2; exit 1; \
	  fi; }

test-slow: install browser-deps
	$(PY) -m pytest -m slow $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache

bench: install
	$(PY) -m bench.models
	$(PY) -m bench.inference
	$(PY) -m bench.resample
	$(PY) -m bench.web
	$(PY) -m bench.peers
	$(PY) -m bench.data
	$(PY) -m bench.loop
	$(PY) -m bench.precision

# Open-Unmix and sepkit recipes trained for the same wall-clock budget, one table (bench/quality.py).
bench-quality: install
	$(PY) -m bench.quality $(ARGS)

# The web page: with the bundled model, or CKPT=outputs/train/<run>/checkpoints/best.ckpt.
serve: install
	$(PY) separate.py serve=true $(if $(CKPT),ckpt=$(CKPT),) $(ARGS)

# The model that ships inside the package (sepkit/models/bundled.ckpt): experiment=bundled from its
# seed on the built-in songs only, slimmed to weights + description, and its record for tests/test_bundled.py.
bundled: install sound-deps
	$(PY) train.py experiment=bundled hydra.run.dir=outputs/train/bundled $(ARGS)
	$(PY) -c "from sepkit.checkpoint import slim; slim('outputs/train/bundled/checkpoints/last.ckpt', 'sepkit/models/bundled.ckpt')"
	$(PY) -m tests.golden.bundled
