# The two commands of the README: `make run` and `make test`.
# Everything installs into .venv with Python 3.10 (Rasa 3.6 supports 3.8-3.10 only).

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export RASA_TELEMETRY_ENABLED := false
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test test-fast install clean-models help

help:
	@echo "make run        install, train the classifiers and the assistant, serve it"
	@echo "make test       install and run the whole test suite"
	@echo "make test-fast  the test suite without the slow tests"

# Python 3.10: on PATH, or any pyenv 3.10.x; a clear message otherwise.
$(PY):
	@py="$$(bash bot/find_python.sh)" || exit 1; \
	echo "creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip<26"
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

run: $(STAMP)
	bash bot/run.sh

clean-models:
	rm -rf models .rasa
