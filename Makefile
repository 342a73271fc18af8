# neural_ae_ros on a machine without a ROS 2 install: everything runs from .venv, which the
# first target to need it builds from nothing (scripts/bootstrap.sh; idempotent and quick after).
# With a ROS 2 install, use colcon instead (README, "ROS 2 workspace").
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.neural_ae_ready
BOOTSTRAP_INPUTS := requirements.txt setup.cfg setup.py package.xml CMakeLists.txt scripts/bootstrap.sh \
	$(wildcard msg/*.msg) $(wildcard msg/vision_msgs_compat/msg/*.msg)
OUT ?= out

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): $(BOOTSTRAP_INPUTS)
	VENV=$(abspath $(VENV)) bash scripts/bootstrap.sh
	touch $@

demo: $(STAMP)
	$(VENV)/bin/neural-ae demo --out $(OUT)/demo

test: $(STAMP)
	$(PY) -m pytest -q test

bench: $(STAMP)
	$(PY) benchmarks/bench_ae_pipeline.py
	$(PY) benchmarks/bench_ae_decision.py
	$(PY) benchmarks/bench_loop_bag.py
	$(PY) benchmarks/bench_transport.py
	$(PY) benchmarks/bench_isp.py
	$(PY) benchmarks/bench_detector.py
	$(PY) benchmarks/bench_scenes.py
	$(PY) benchmarks/bench_hdr_merge.py
	$(PY) benchmarks/bench_graph.py

clean:
	rm -rf build $(OUT) .pytest_cache
