# localdigest developer and user entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PDFS ?= examples/*.pdf
OUT ?= out/demo
BUNDLE ?= dist/localdigest-bundle

.PHONY: install demo test fuzz lint typecheck clean eval eval-extract bench bundle

# The stamp is rebuilt only when pyproject.toml changes. pip reuses the installed (or its cached,
# locally built) llama-cpp-python wheel, so the ~9 minute compile happens once per machine.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/localdigest models install default
	$(BIN)/localdigest digest $(PDFS) -o $(OUT)

test: install
	$(BIN)/pytest -q

# Every mutated corpus PDF (a few hundred, fixed seed) through one batch; `make test` runs a few.
fuzz: install
	FUZZ_CASES=all $(BIN)/pytest -q tests/test_fuzz.py

lint: install
	$(BIN)/ruff check localdigest tests benchmarks scripts
	$(BIN)/ruff format --check localdigest tests benchmarks scripts

typecheck: install
	$(BIN)/mypy localdigest

eval-extract: install
	$(PY) scripts/eval_extract.py ../shared/corpus

eval: install
	$(BIN)/localdigest eval $(OUT)/records

# The pipeline before issue 14 (the whole paper in every prompt), measured in the same run as ours.
BASELINE ?= 4cc6c65
bench: install
	$(PY) benchmarks/bench.py --baseline $(BASELINE)

# An offline bundle for air-gapped machines (wheels, the model `digest` uses here, INSTALL.txt):
# `make bundle BUNDLE=/media/usb/localdigest`; MODEL=NAME|PATH carries another model.
bundle: install
	$(BIN)/localdigest bundle $(BUNDLE) $(if $(MODEL),--model $(MODEL))

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache out
