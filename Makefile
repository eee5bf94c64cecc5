# Developer and CI entry points. `make test` is what .ci/run (and the README) runs.

PYTHON      ?= python3
VENV        := .venv
VPY         := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt
PYTEST_ARGS ?=

# apt-get as root, through sudo otherwise
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo )env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: venv test demo dot node chromium

venv: $(STAMP)

# Debian's python3 makes venvs only with the python3-venv package (it carries ensurepip).
$(VPY):
	$(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV) && $(APT_GET) update && $(APT_GET) install -y python3-venv && \
	  $(PYTHON) -m venv $(VENV); }

# Reinstalls only when the venv is new or the requirements changed.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(VPY)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

# graphviz's `dot` draws the diagrams (netc render, the render tests): installed if missing.
dot:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "graphviz 'dot' not found; installing graphviz" >&2; \
	  $(APT_GET) update && $(APT_GET) install -y graphviz; }
	@command -v dot >/dev/null 2>&1 || { echo "graphviz 'dot' still not on PATH" >&2; exit 1; }

# The VS Code extension's grammar is tested with npm's vscode-tmgrammar-test
# (tests/test_editor_grammar.py): node and npm are installed if missing, then the pinned
# editors/vscode/package-lock.json into editors/vscode/node_modules (ignored).
NODE_STAMP := editors/vscode/node_modules/.installed

node: $(NODE_STAMP)

$(NODE_STAMP): editors/vscode/package.json editors/vscode/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "npm not found; installing nodejs and npm" >&2; \
	  $(APT_GET) update && $(APT_GET) install -y nodejs npm; }
	npm ci --prefix editors/vscode --no-audit --no-fund
	touch $@

# Debian's Chromium runs the browser tests (the explorer, SVG text in a browser), driven by
# Playwright through its executable path (never `playwright install`): installed if missing.
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "/usr/bin/chromium not found; installing chromium" >&2; \
	  $(APT_GET) update && $(APT_GET) install -y chromium; }
	@test -x /usr/bin/chromium || { echo "/usr/bin/chromium still missing" >&2; exit 1; }

# pytest exits 5 when it collected no tests: reported, and a failure like any nonzero code.
# -n 2: pytest-xdist runs the tests on both cores of the CI machine.
test: venv dot node chromium
	@$(VPY) -m pytest -n 2 $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# The main job on one example: check, summarise, compile to PyTorch (and NumPy), draw it,
# and run both backends on the same weights. Everything it writes goes to build/ (ignored).
demo: venv dot
	$(VENV)/bin/netc check examples/resnet18.net
	$(VENV)/bin/netc summary examples/lenet.net
	mkdir -p build
	$(VENV)/bin/netc compile examples/resnet18.net --backend torch -O2 -o build/resnet18.py
	$(VENV)/bin/netc compile examples/resnet18.net --backend numpy -o build/resnet18_numpy.py
	$(VENV)/bin/netc render examples/resnet18.net --depth 1 -o build/resnet18.svg
	$(VENV)/bin/netc verify examples/lenet.net
	@echo "wrote build/resnet18.py, build/resnet18_numpy.py, build/resnet18.svg"
