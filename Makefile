# Every target creates .venv in the repository root and installs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint bench bench-load bench-store dashboards demo-live jaeger clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## The main job: serve diagnoses (the bundled demo traces when no Jaeger is configured).
run: $(STAMP)
	$(BIN)/opdiag serve

## The pinned Jaeger (tools/jaeger) in .tools/bin/jaeger; rebuilt only when the pin changes.
jaeger:
	bash scripts/build-jaeger.sh

## Every test: system packages, Jaeger, lint, dashboards drift check, the pytest suite.
test: $(STAMP) jaeger
	bash scripts/ensure-system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/opdiag dashboards generate --check
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

## The simulated KTRDR as processes on this machine (spans to $$OTEL_EXPORTER_OTLP_ENDPOINT).
demo-live: $(STAMP)
	$(BIN)/python -m ktrdr_sim.live --role all

lint: $(STAMP)
	$(BIN)/ruff check .

dashboards: $(STAMP)
	$(BIN)/opdiag dashboards generate

bench: $(STAMP)
	$(BIN)/python -m bench.diagnose_bench

bench-load: $(STAMP)
	$(BIN)/python -m bench.load_bench

## The watcher's cost per pass and the store's route latency, over the live demo.
bench-store: $(STAMP)
	$(BIN)/python -m bench.store_bench

clean:
	rm -rf $(VENV) build *.egg-info .tools
