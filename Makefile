# tfjs-transfer: `make build` sets itself up on a fresh machine, then builds the site.
PYTHON  ?= python3
VENV    ?= .venv
# Defaults: ../shared/data when it is beside the checkout (this project's machines and CI,
# which have no internet); else the example logos shipped in examples/ and the ImageNet
# MobileNet through Keras's own download, cached in ~/.keras/models ($KERAS_HOME/models).
DATA    ?= $(or $(wildcard ../shared/data/brand/train),examples/logos/train)
WEIGHTS ?= $(or $(wildcard ../shared/data/mobilenet/mobilenet_0.25_224_imagenet.h5),imagenet)
OUT     ?= site
ARGS    ?=
HOST    ?= 127.0.0.1
PORT    ?= 8000
PYTEST_ARGS ?=
# pytest's processes (pytest-xdist; each file's tests stay in one): the suite waits on
# subprocesses, Chromium and the disk much of the time, so two keep 2 cores busy (README,
# Tests). TEST_JOBS=0: one process.
TEST_JOBS ?= 2

BIN   := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile
STAMP := $(VENV)/.installed
BEAM_STAMP := $(VENV)/.installed-beam
WEB_SOURCES := $(wildcard web/src/*.js web/src/worker/*.js web/src/wasm/*.js web/src/wasm/*.wat) web/tools/wat.mjs web/coi-sw.js \
               web/index.html web/style.css web/build.mjs web/package-lock.json

.PHONY: all setup check-python web build wheel serve test test-fast bench clean
all: build

setup: $(STAMP) web/node_modules/.installed

# The Python side: a venv with the pinned working set (requirements.lock) and this package.
# A new venv is checked first: TensorFlow 2.19 has wheels for Python 3.10-3.12 only.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || { $(MAKE) --no-print-directory check-python && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $@

# Apache Beam (the `beam` extra: `--runner beam`, `tfjs-transfer extract`) for the tests only, so CI
# tests it; `make build` leaves it out, as a newcomer's one-machine build never imports it and
# Beam brings a large set of its own (grpc, pyarrow, ...). Versions from requirements.lock too.
$(BEAM_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test,beam]'
	touch $@

# The browser side: exact versions from web/package-lock.json.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run --silent build

web: web/dist/index.html

# Stops with how to get a Python TensorFlow 2.19 runs on (current Debian, Ubuntu and Homebrew ship 3.13).
check-python:
	@v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || v=; \
	case "$$v" in 3.10|3.11|3.12) ;; *) \
	  echo "error: $(PYTHON) is Python $${v:-(not found)}; tfjs-transfer needs Python 3.10, 3.11 or 3.12 (TensorFlow 2.19 has no wheels for others)." >&2; \
	  echo "Get a Python 3.12 and name it with PYTHON=, then run make again:" >&2; \
	  echo "  any system:    uv python install 3.12 && make setup PYTHON=\"\$$(uv python find 3.12)\"" >&2; \
	  echo "  Ubuntu:        sudo add-apt-repository ppa:deadsnakes/ppa && sudo apt install python3.12-venv && make setup PYTHON=python3.12" >&2; \
	  echo "  macOS:         brew install python@3.12 && make setup PYTHON=python3.12" >&2; \
	  echo "  pyenv:         pyenv install 3.12 && make setup PYTHON=\"\$$(pyenv root)/versions/\$$(pyenv latest 3.12)/bin/python\"" >&2; \
	  exit 2;; esac

# dist/*.whl: the package with the built page inside (setup.py bundles web/ if stale; needs
# Node to build, not to install). build/ is cleared so no deleted module lingers in it.
wheel: $(STAMP) web
	rm -rf build dist/tfjs_transfer-*.whl
	$(BIN)/pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir dist .
	@ls -l dist/tfjs_transfer-*.whl

build: $(STAMP) web
	$(BIN)/tfjs-transfer build --data $(DATA) --weights $(WEIGHTS) --out $(OUT) $(ARGS)

serve: $(STAMP)
	$(BIN)/tfjs-transfer serve $(OUT) --host $(HOST) --port $(PORT)

# The page's wasm kernels first (node:test, web/test/), then pytest, whose summary CI reads last.
test: $(BEAM_STAMP) web/node_modules/.installed web
	cd web && npm test --silent
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(BEAM_STAMP) web/node_modules/.installed
	cd web && npm test --silent
	$(PYTEST) -m "not slow and not browser" $(PYTEST_ARGS)

bench: $(STAMP) web
	$(BIN)/python bench/run.py

clean:
	rm -rf $(OUT) $(OUT).python web/dist .pytest_cache build dist
