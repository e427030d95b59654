# The two commands a new user runs (README): `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
XVFB := $(if $(DISPLAY),,xvfb-run -a -s "-screen 0 1280x800x24")

.PHONY: demo test setup setup-test bench bundle clean run-hub

setup:
	scripts/bootstrap.sh demo

setup-test:
	scripts/bootstrap.sh test

demo: setup
	$(XVFB) $(VENV)/bin/kiosk demo $(DEMO_ARGS)

test: setup-test
	$(XVFB) $(PY) -m pytest $(PYTEST_ARGS)

bench: setup-test
	for b in bench/bench_*.py; do echo "== $$b"; $(XVFB) $(PY) $$b || exit 1; done

bench-ui: setup-test
	$(XVFB) $(PY) bench/bench_ui.py

run-hub: setup
	$(VENV)/bin/kiosk hub --demo

bundle: setup
	$(PY) -m pip install -q "pyinstaller>=6"
	$(VENV)/bin/pyinstaller --noconfirm --distpath build/dist --workpath build/pyinstaller kiosk.spec

clean:
	rm -rf build .pytest_cache
