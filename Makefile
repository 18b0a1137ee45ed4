# make report   restart-and-run-all notebook.ipynb in place, then report.html and report.pdf (and notebooks/{regression,text,detection}.ipynb → .html)
#               (REPORT_CODE=--hide-code: code collapsed behind a button; --no-code: left out)
# make test     cargo tests, lab serve end to end (browser, promtool, flood, kill -9), then the
#               notebooks headless on the smoke profile, then opened
#               unsigned in JupyterLab through headless Chromium (figures shown, a kernel round trip)
# make lab      JupyterLab with the Rust (helpers) kernel
# make check-repro  retrain everything from scratch, compare every output with the committed notebook
# make bench    training/evaluation throughput, lab against PyTorch, same machine
# make bench-serve  lab serve against FastAPI + uvicorn + onnxruntime, requests/s and p50/p99
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := source scripts/env.sh
VENV := $(shell $(ENV) && echo $$LAB_VENV)
PY := $(VENV)/bin/python
NOTEBOOK_TIMEOUT ?= 3600
REPORT_CODE ?=
# What the printed report must show: its sections' text, pages of figures.
PDF_CHECKS := --min-pages 10 --min-figure-pages 6 --expect "1. Problem" --expect "6. Conclusion"
# The regression track's notebook (tabular and time series), run beside the main one.
REGRESSION := notebooks/regression.ipynb
# The text-classification track's notebook.
TEXT := notebooks/text.ipynb
# The object-detection track's notebook (tree crowns on aerial images).
DETECTION := notebooks/detection.ipynb
# glibc keeps freed memory instead of returning it to the OS and faulting it back in
# every training step: measurably faster tch training on CPU (see environment.md).
export MALLOC_MMAP_THRESHOLD_ := 268435456
export MALLOC_TRIM_THRESHOLD_ := 1073741824
export MALLOC_TOP_PAD_ := 268435456

.PHONY: setup test report check-repro lab bench bench-serve build fmt clippy

setup:
	scripts/setup

build: setup
	cargo build --release

test: setup
	cargo test --release
	$(PY) scripts/check_serve.py --lab target/release/lab
	tmp=$$(mktemp -d) && \
	  LAB_PROFILE=smoke LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py notebook.ipynb $$tmp/notebook.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/build_report.py $$tmp/notebook.ipynb $$tmp/report.html --hide-code && \
	  $(PY) scripts/check_notebook.py $$tmp/notebook.ipynb --min-svg 12 --min-html 17 --html $$tmp/report.html && \
	  $(PY) scripts/check_report_render.py $$tmp/report.html $$tmp/report.png && \
	  $(PY) scripts/build_pdf.py $$tmp/report.html $$tmp/report.pdf && \
	  $(PY) scripts/check_pdf.py $$tmp/report.pdf $(PDF_CHECKS) && \
	  LAB_PROFILE=smoke LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py $(REGRESSION) $$tmp/regression.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/build_report.py $$tmp/regression.ipynb $$tmp/regression.html --hide-code && \
	  $(PY) scripts/check_notebook.py $$tmp/regression.ipynb --min-svg 5 --min-html 13 --html $$tmp/regression.html && \
	  LAB_PROFILE=smoke LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py $(TEXT) $$tmp/text.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/build_report.py $$tmp/text.ipynb $$tmp/text.html --hide-code && \
	  $(PY) scripts/check_notebook.py $$tmp/text.ipynb --min-svg 6 --min-html 16 --html $$tmp/text.html && \
	  LAB_PROFILE=smoke LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py $(DETECTION) $$tmp/detection.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/build_report.py $$tmp/detection.ipynb $$tmp/detection.html --hide-code && \
	  $(PY) scripts/check_notebook.py $$tmp/detection.ipynb --min-svg 6 --min-html 15 --html $$tmp/detection.html && \
	  $(PY) scripts/check_jupyterlab.py --root $$tmp notebook.ipynb regression.ipynb text.ipynb detection.ipynb && \
	  LAB_PROFILE=smoke LAB_RUNS=$$tmp/saved_models $(PY) scripts/check_jupyterlab.py --root . --run $(TEXT):4 && \
	  rm -rf $$tmp

report: setup
	$(PY) scripts/run_notebook.py notebook.ipynb notebook.ipynb --timeout $(NOTEBOOK_TIMEOUT)
	$(PY) scripts/build_report.py notebook.ipynb report.html $(REPORT_CODE)
	$(PY) scripts/check_notebook.py notebook.ipynb --min-svg 12 --min-html 17 --html report.html
	$(PY) scripts/build_pdf.py report.html report.pdf
	$(PY) scripts/check_pdf.py report.pdf $(PDF_CHECKS)
	$(PY) scripts/run_notebook.py $(REGRESSION) $(REGRESSION) --timeout $(NOTEBOOK_TIMEOUT)
	$(PY) scripts/build_report.py $(REGRESSION) notebooks/regression.html $(REPORT_CODE)
	$(PY) scripts/check_notebook.py $(REGRESSION) --min-svg 5 --min-html 13 --html notebooks/regression.html
	$(PY) scripts/run_notebook.py $(TEXT) $(TEXT) --timeout $(NOTEBOOK_TIMEOUT)
	$(PY) scripts/build_report.py $(TEXT) notebooks/text.html $(REPORT_CODE)
	$(PY) scripts/check_notebook.py $(TEXT) --min-svg 6 --min-html 16 --html notebooks/text.html
	$(PY) scripts/run_notebook.py $(DETECTION) $(DETECTION) --timeout $(NOTEBOOK_TIMEOUT)
	$(PY) scripts/build_report.py $(DETECTION) notebooks/detection.html $(REPORT_CODE)
	$(PY) scripts/check_notebook.py $(DETECTION) --min-svg 6 --min-html 15 --html notebooks/detection.html

# Retrains every run from scratch in a temp folder and compares every output with the
# committed notebook (timings ignored): restart-and-run-all must reproduce the report.
check-repro: setup
	tmp=$$(mktemp -d) && \
	  LAB_FRESH=1 LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py notebook.ipynb $$tmp/notebook.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/compare_notebooks.py notebook.ipynb $$tmp/notebook.ipynb && \
	  LAB_FRESH=1 LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py $(REGRESSION) $$tmp/regression.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/compare_notebooks.py $(REGRESSION) $$tmp/regression.ipynb && \
	  LAB_FRESH=1 LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py $(TEXT) $$tmp/text.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/compare_notebooks.py $(TEXT) $$tmp/text.ipynb && \
	  LAB_FRESH=1 LAB_RUNS=$$tmp/saved_models $(PY) scripts/run_notebook.py $(DETECTION) $$tmp/detection.ipynb --timeout $(NOTEBOOK_TIMEOUT) && \
	  $(PY) scripts/compare_notebooks.py $(DETECTION) $$tmp/detection.ipynb && rm -rf $$tmp

# The committed notebooks are signed on this machine first, so that JupyterLab shows their
# outputs as trusted (figures also show untrusted, through their <img> fallback).
lab: setup
	$(VENV)/bin/jupyter trust notebook.ipynb $(REGRESSION) $(TEXT) $(DETECTION)
	$(VENV)/bin/jupyter lab notebook.ipynb

bench: build
	scripts/bench

# Serving throughput and latency at concurrency 1/8/64: lab serve against FastAPI + uvicorn
# + onnxruntime on the same ONNX network (hey as the load generator).
bench-serve: build
	$(PY) scripts/bench_serve.py --out bench_serve.json

fmt:
	cargo fmt --all

clippy:
	cargo clippy --release --all-targets -- -D warnings
