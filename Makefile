# fabedge: `make demo` and `make test` set up everything they need on a fresh
# Debian / Raspberry Pi OS machine (system packages, venv, pip) and then run.

PYTHON    ?= python3
VENV      ?= .venv
PY        := $(VENV)/bin/python
PREFIX    ?= /opt/fabedge
DESTDIR   ?=
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and the demo use: command to look for -> package.
SYSDEPS   := /usr/sbin/mosquitto:mosquitto mosquitto_sub:mosquitto-clients systemd-analyze:systemd udevadm:udev
# keyed by the kernels' source: numba checks only the stamp of the file a kernel is defined
# in, so a change to an inlined helper in another file would reuse a stale compiled kernel
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba/$(shell cat $(sort $(wildcard edge/toolpath/*.py)) | sha1sum | cut -c1-12)

.PHONY: setup sysdeps apt-missing venv test demo bench install uninstall image clean

setup: sysdeps venv

sysdeps:
	@$(MAKE) -s apt-missing PAIRS="$(SYSDEPS)"

# Installs the Debian packages of PAIRS (command:package) whose command is missing.
apt-missing:
	@missing=""; for pair in $(PAIRS); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x "$$cmd" ] || missing="$$missing $$pkg"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/fabedge demo

# stream_grbl.py runs as the GRBL rows of stream.py.
BENCHES ?= analyze parse stream telemetry commands vision agent fleet
# The analyze bench slices its big file with PrusaSlicer.
BENCH_SYSDEPS := prusa-slicer:prusa-slicer
bench: setup
	@$(MAKE) -s apt-missing PAIRS="$(BENCH_SYSDEPS)"
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

install:
	$(MAKE) -f install.mk PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) install

uninstall:
	$(MAKE) -f install.mk PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) uninstall

# needs PUBKEY_SSH_FIRST_USER="$(cat ~/.ssh/id_ed25519.pub)" or FIRST_USER_PASS=... (docs/install.md)
image:
	$(MAKE) -f install.mk image

clean:
	rm -rf $(VENV) .cache build *.egg-info
