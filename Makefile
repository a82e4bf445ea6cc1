# sepkit: `make train` and `make test` set everything up from scratch (a .venv beside this file).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch and torchaudio builds known to load together here; override for another platform/CUDA.
TORCH_SPEC ?= torch==2.14.1 torchaudio==2.11.0
ARGS ?=
# What `make train` trains (conf/experiment/): builtin = the CPU recipe on the realistic built-in songs.
EXPERIMENT ?= builtin

.PHONY: install train test test-slow lint bench bench-quality serve bundled clean ffmpeg browser-deps sound-deps

install: $(STAMP)

ffmpeg:
	@command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing ffmpeg (musdb/stempeg read audio through it)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else \
	    echo "sepkit needs ffmpeg: run 'sudo apt-get install -y ffmpeg' (or your OS's package) and retry" >&2; exit 1; \
	  fi; }

# data=synthetic_real: fluidsynth + the MIT General MIDI bank (required), espeak-ng (GPL-3, optional, a separate program).
sound-deps:
	@command -v fluidsynth >/dev/null 2>&1 && test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 && command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing fluidsynth, fluid-soundfont-gm and espeak-ng (data=synthetic_real renders songs with them)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      fluidsynth fluid-soundfont-gm espeak-ng >/dev/null; \
	  else \
	    echo "data=synthetic_real needs fluidsynth and fluid-soundfont-gm (espeak-ng optional): sudo apt-get install -y fluidsynth fluid-soundfont-gm espeak-ng" >&2; exit 1; \
	  fi; }

$(STAMP): pyproject.toml | ffmpeg sound-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

train: install
	$(PY) train.py experiment=$(EXPERIMENT) $(ARGS)

test: install
	$(PY) -m pytest -m "not slow" $(ARGS)

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
bundled: install
	$(PY) train.py experiment=bundled hydra.run.dir=outputs/train/bundled $(ARGS)
	$(PY) -c "from sepkit.checkpoint import slim; slim('outputs/train/bundled/checkpoints/last.ckpt', 'sepkit/models/bundled.ckpt')"
	$(PY) -m tests.golden.bundled
