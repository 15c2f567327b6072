# make build: create .venv if needed, install obsgen, compile specs/selftest.yaml into generated/.
# make test:  install test extras and the Prometheus/Alertmanager/Pushgateway Debian packages when
#             missing, then run the whole suite.
# make demo:  a local stack with dev applied and two fire drills (KEEP=1: leave it running; make
#             demo-stop stops it).  make bench: benchmarks into bench/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SPEC   ?= specs/selftest.yaml
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS   := prometheus prometheus-alertmanager prometheus-pushgateway
TOOLS  := prometheus promtool prometheus-alertmanager amtool prometheus-pushgateway

.PHONY: build test check validate verify demo demo-stop bench backends clean
.DEFAULT_GOAL := build

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

build: $(VENV)/.installed
	$(BIN)/obsgen build --spec $(SPEC)

validate: $(VENV)/.installed
	$(BIN)/obsgen validate --spec $(SPEC)

check: $(VENV)/.installed
	$(BIN)/obsgen check --spec $(SPEC)

backends:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEBS); \
	fi

# The suite runs one worker per core (pytest-xdist), a test file to a worker, so that each file's live
# stack is started once; JOBS=1 runs it in one process.
JOBS   ?= auto
test: $(VENV)/.installed backends
	$(BIN)/python -m pytest $(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist loadfile)

verify: $(VENV)/.installed backends
	$(BIN)/obsgen verify

# A local stack (real Prometheus, Alertmanager, Pushgateway; a sink standing in for PagerDuty and
# Slack; the Grafana test double), dev applied to it, a kernel and a governance fire drill.
# KEEP=1 leaves the stack running and prints a `cd` into the demo's own directory (its spec, generated/
# and state) and the `export OBSGEN_...` lines that point live commands at the stack (never a spec:
# build and check in your checkout are unchanged); DRILLS=0 skips the drills. make demo-stop stops a
# kept demo (and does nothing when none runs).
KEEP   ?= 0
DRILLS ?= 1
demo: $(VENV)/.installed backends
	$(BIN)/python tests/demo.py $(if $(filter-out 0,$(KEEP)),--keep) $(if $(filter 0,$(DRILLS)),--no-drills)

demo-stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python tests/demo.py --stop; else echo "demo-stop: no $(BIN)/python, so no demo ran"; fi

# Benchmarks (check, build, scaling, apply, rule cost, time to alert) into bench/results.md and
# bench/results.json; see bench/README.md.
bench: $(VENV)/.installed backends
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
