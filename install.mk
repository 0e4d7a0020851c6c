# `make install` / `make uninstall` / `make image` (called from the Makefile).
#
# PREFIX   where the venv lives, built at its final path (default /opt/fabedge)
# DESTDIR  staging root for packaging and images; empty for a real install
# The numba cache is warmed at install so a Pi never compiles at job start.

PYTHON   ?= python3
PREFIX   ?= /opt/fabedge
DESTDIR  ?=
BINDIR   ?= /usr/local/bin
UNITDIR  ?= /etc/systemd/system
UDEVDIR  ?= /etc/udev/rules.d
ETCDIR   ?= /etc/fabedge
STATEDIR ?= /var/lib/fabedge
CACHEDIR ?= /var/cache/fabedge
ROOT     := $(DESTDIR)
VENV     := $(ROOT)$(PREFIX)
IS_ROOT  := $(shell [ "$$(id -u)" = 0 ] && echo yes)
REAL     := $(if $(DESTDIR),,$(IS_ROOT))

.PHONY: install uninstall image

install:
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q .
	@# On a Pi the panel needs lgpio in this venv (the unit sets GPIOZERO_PIN_FACTORY=lgpio):
	@# stop here rather than install an agent whose STOP button cannot work.
	@case "$$(uname -m)" in aarch64|armv7l) $(VENV)/bin/python -c "import lgpio" || { \
	  echo "make install: lgpio did not install into $(VENV) (no wheel for this Python?):" \
	    "apt-get install swig liblgpio-dev and run make install again" >&2; exit 1; };; esac
	@# Scripts and activate name the staging path; rewrite them to the final one.
	@if [ -n "$(DESTDIR)" ]; then \
	  grep -rlI --null "$(VENV)" $(VENV)/bin $(VENV)/pyvenv.cfg | xargs -0 -r sed -i "s#$(VENV)#$(PREFIX)#g"; fi
	install -d $(ROOT)$(BINDIR) $(ROOT)$(UNITDIR) $(ROOT)$(UDEVDIR) $(ROOT)$(ETCDIR) \
	  $(ROOT)$(STATEDIR) $(ROOT)$(CACHEDIR)/numba $(VENV)/share/doc/fabedge
	ln -sfn $(PREFIX)/bin/fabedge $(ROOT)$(BINDIR)/fabedge
	install -m 0644 systemd/fabedge.service systemd/fabedge-firstboot.service $(ROOT)$(UNITDIR)/
	install -m 0644 config/udev/99-fabedge.rules $(ROOT)$(UDEVDIR)/
	install -m 0644 config/fabedge.example.toml $(ROOT)$(ETCDIR)/fabedge.example.toml
	install -m 0644 README.md docs/*.md $(VENV)/share/doc/fabedge/
	@# Warm the numba cache where the service will look for it (the cache is keyed to
	@# the source path, so a staged install is warmed again on first boot).
	NUMBA_CACHE_DIR=$(ROOT)$(CACHEDIR)/numba $(VENV)/bin/python -c "from edge.toolpath import warm_cache; warm_cache()"
	@if [ "$(REAL)" = yes ]; then \
	  getent group gpio >/dev/null || groupadd --system gpio; \
	  id fabedge >/dev/null 2>&1 || useradd --system --user-group --home-dir $(STATEDIR) \
	    --shell /usr/sbin/nologin --groups dialout,gpio,video fabedge; \
	  chown -R fabedge:fabedge $(STATEDIR) $(CACHEDIR); \
	  systemctl daemon-reload 2>/dev/null || true; \
	  udevadm control --reload 2>/dev/null || true; \
	  systemctl enable fabedge.service fabedge-firstboot.service 2>/dev/null || true; \
	fi
	@echo "fabedge installed in $(VENV); config: $(ROOT)$(ETCDIR)/fabedge.toml (see fabedge.example.toml)"

uninstall:
	-@[ "$(REAL)" = yes ] && systemctl disable --now fabedge.service fabedge-firstboot.service 2>/dev/null || true
	rm -f $(ROOT)$(BINDIR)/fabedge $(ROOT)$(UNITDIR)/fabedge.service \
	  $(ROOT)$(UNITDIR)/fabedge-firstboot.service $(ROOT)$(UDEVDIR)/99-fabedge.rules \
	  $(ROOT)$(ETCDIR)/fabedge.example.toml
	rm -rf $(VENV) $(ROOT)$(CACHEDIR)
	@echo "fabedge removed; kept $(ROOT)$(ETCDIR) (config) and $(ROOT)$(STATEDIR) (job store, spool)"

image:
	@./image/build.sh
