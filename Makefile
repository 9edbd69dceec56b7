# softmaint: `make demo` and `make test` set everything up on a fresh machine, then run.
# Set-up is incremental: the venv is reinstalled only when a requirements file changes, and the
# workspace is rebuilt only when a file under src/ changes.
SHELL := /bin/bash
VENV := .venv
VENV_STAMP := $(VENV)/.softmaint-installed
BUILD_STAMP := install/.softmaint-built
SRC_FILES := $(shell find src launch config models -type f -not -path '*/__pycache__/*' -not -name '*.pyc')
PROFILE ?= default

.PHONY: setup build test demo clean constraints help

help:
	@echo "make demo   set up, then run the sim robot + the node suite and summarise"
	@echo "make test   set up, build, run every test"
	@echo "make setup  only the set-up (venv + colcon build)"

$(VENV_STAMP): requirements/*.txt tools/setup_venv.sh tools/fix_ros_cmake_exports.py
	flock .build.lock tools/setup_venv.sh
	@touch $@

$(BUILD_STAMP): $(VENV_STAMP) $(SRC_FILES) colcon.meta tools/build.sh
	flock .build.lock tools/build.sh
	@touch $@

setup: $(BUILD_STAMP)

build: $(BUILD_STAMP)

test: setup
	tools/run_tests.sh

demo: setup
	tools/demo.sh $(PROFILE)

constraints: $(VENV_STAMP)
	$(VENV)/bin/pip freeze --exclude-editable | sed 's/+cpu//' | sort -f > requirements/constraints.txt

clean:
	rm -rf build install log
