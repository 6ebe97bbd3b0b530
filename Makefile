# mcpmesh: `make up` starts everything and runs a first analysis; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install generate check-generated lint typecheck up test bench bench-peers clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The dashboard's pinned browser libraries (package-lock.json), served as files: no build step.
DASHBOARD := services/gateway/dashboard
DASHBOARD_LIBS := $(DASHBOARD)/node_modules/.package-lock.json

$(DASHBOARD_LIBS): $(DASHBOARD)/package-lock.json
	npm ci --prefix $(DASHBOARD) --no-audit --no-fund --silent

install: $(STAMP) $(DASHBOARD_LIBS)

generate: install
	$(PY) scripts/generate.py
	$(PY) -m services.launcher.envoy_config --write

check-generated: install
	$(PY) scripts/generate.py --check

lint: install
	$(VENV)/bin/buf lint
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

up: install
	$(PY) scripts/generate.py --check || $(PY) scripts/generate.py
	$(PY) -m services.launcher $(ARGS)

test: check-generated lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)
	$(PY) -m bench.unary $(ARGS)
	$(PY) -m bench.code_analyzer
	$(PY) -m bench.tools
	$(PY) -m bench.workflows
	$(PY) -m bench.workflows --uvloop
	$(PY) -m bench.websocket_fanout

# LangGraph's own local Agent Server (langgraph dev) on the same graph, in its own venv under .tools/.
bench-peers: install
	test -x .tools/langgraph-peers/bin/langgraph || ($(PYTHON) -m venv .tools/langgraph-peers && \
	  .tools/langgraph-peers/bin/pip install --quiet "langgraph-cli[inmem]==0.4.40")
	$(PY) -m bench.workflow_peers

clean:
	rm -rf $(VENV) .mcpmesh .pytest_cache .mypy_cache
