# tfjs-transfer: `make build` sets itself up on a fresh machine, then builds the site.
PYTHON  ?= python3
VENV    ?= .venv
DATA    ?= ../shared/data/brand/train
WEIGHTS ?= ../shared/data/mobilenet/mobilenet_0.25_224_imagenet.h5
OUT     ?= site
ARGS    ?=
HOST    ?= 127.0.0.1
PORT    ?= 8000
PYTEST_ARGS ?=

BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB_SOURCES := $(wildcard web/src/*.js web/src/wasm/*.js web/src/wasm/*.wat) web/tools/wat.mjs \
               web/index.html web/style.css web/build.mjs web/package-lock.json

.PHONY: all setup web build serve test test-fast bench clean
all: build

setup: $(STAMP) web/node_modules/.installed

# The Python side: a venv with the pinned working set (requirements.lock) and this package.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $@

# The browser side: exact versions from web/package-lock.json.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run --silent build

web: web/dist/index.html

build: $(STAMP) web
	$(BIN)/tfjs-transfer build --data $(DATA) --weights $(WEIGHTS) --out $(OUT) $(ARGS)

serve: $(STAMP)
	$(BIN)/tfjs-transfer serve $(OUT) --host $(HOST) --port $(PORT)

# The page's wasm kernels first (node:test, web/test/), then pytest, whose summary CI reads last.
test: $(STAMP) web/node_modules/.installed web
	cd web && npm test --silent
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) web/node_modules/.installed
	cd web && npm test --silent
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

bench: $(STAMP) web
	$(BIN)/python bench/run.py

clean:
	rm -rf $(OUT) $(OUT).python web/dist .pytest_cache
