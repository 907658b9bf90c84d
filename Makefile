# The two commands of the README:
#   make demo   install, start embedded PostgreSQL, migrate, seed, run `dagster dev`
#   make test   install, run the whole test suite
#   make serve  install, migrate, run the hub as separate services (deploy/Procfile, deploy/README.md)
#   make drills failure drills on hosts in network namespaces (root; README "Failure drills")
# .ci/run calls `make test`.

VENV   ?= .venv
PYTHON ?= python3
STAMP  := $(VENV)/.installed

.PHONY: install demo serve test drills clean-state

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s); set PYTHON=..." % sys.version.split()[0])'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/python -m pip install --quiet --progress-bar off -e '.[dev]'
	@touch $(STAMP)

demo: install
	@scripts/demo.sh

serve: install
	@scripts/serve.sh

test: install
	@scripts/test.sh

drills: install
	@scripts/drills.sh

clean-state:
	-$(VENV)/bin/hub db stop
	rm -rf .hub
