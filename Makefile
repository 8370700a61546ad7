# bai: the two commands a newcomer needs are `make dev` and `make test` (see README.md).
# Everything runs as root on a Debian 12 machine: the dev cluster is real Slurm on this host.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Mitogen's strategy (ansible/strategy_plugins): a third of the time of Ansible's own here.
PLAY   := cd ansible && ANSIBLE_STRATEGY=mitogen_linear ../$(BIN)/ansible-playbook -i inventories/dev

.PHONY: help dev test cluster dev-down lint unit slurm-tests record venv vagrant-up vagrant-check vagrant-down slurm-24.11-start

help:
	@echo "make dev       bring up the dev Slurm cluster on this host (and run a first job)"
	@echo "make test      lint, type-check and run every test (brings the cluster up if needed)"
	@echo "make dev-down  stop every daemon the dev cluster started"
	@echo "make lint      ruff + mypy only;  make unit: the tests that need no cluster"
	@echo "make vagrant-up / vagrant-check / vagrant-down   the 3-VM cluster (vagrant/README.md)"

$(VENV)/.installed: pyproject.toml
	@echo "==> Python environment in $(VENV) (pip install -e '.[dev]')"
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
		{ echo "==> installing python3-venv"; apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# compat: a path in a .pth, not an import hook (which costs every `bai` call 25 ms)
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

# The old official SDK, which tests/e2e/test_sdk2.py drives against bai. It shares its package
# name with the 7.0.0 of the venv, so it lives in a directory of its own, on PYTHONPATH only in
# the subprocess that uses it (tests/e2e/sdk2_flow.py). Makefile edits reinstall it (the pins).
SDK2 := azure-mgmt-batchai==2.0.0 msrest==0.7.1 msrestazure==0.6.4.post1

$(VENV)/sdk2/.installed: Makefile | $(VENV)/.installed
	@echo "==> The 2.0.0 SDK in $(VENV)/sdk2 ($(SDK2))"
	rm -rf $(VENV)/sdk2
	$(BIN)/pip install --quiet --no-compile --target $(VENV)/sdk2 $(SDK2)
	@touch $@

venv: $(VENV)/.installed $(VENV)/sdk2/.installed

cluster: venv
	@echo "==> Dev Slurm cluster (ansible/site.yml, inventory ansible/inventories/dev)"
	$(PLAY) site.yml

dev: cluster
	@echo "==> bai service (restarted to run this checkout's code)"
	@/usr/local/sbin/bai-daemonctl restart bai
	@$(BIN)/bai dev init --config /etc/bai/bai.toml --env-file .dev/env
	@echo "==> Nodes of the dev cluster"
	@$(BIN)/bai slurm nodes
	@echo "==> A first job (examples/first-job.sh)"
	@. ./.dev/env && examples/first-job.sh

dev-down: venv
	$(PLAY) dev-down.yml

lint: venv
	@echo "==> ruff and mypy --strict"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit

# The Slurm 24.11 cluster (tests/slurm) is made in the background while lint, the dev cluster
# and the first tests run.
slurm-24.11-start: venv
	tests/fixtures/slurm-24.11/cluster.sh start

# Lint runs beside the dev cluster's bring-up (which mostly waits); its output follows.
LINT_LOG := /var/tmp/bai-lint.log
test: slurm-24.11-start
	@echo "==> ruff and mypy --strict (beside the dev cluster's bring-up; their output follows)"
	@$(MAKE) --no-print-directory lint >$(LINT_LOG) 2>&1 & beside=$$!; \
	$(MAKE) --no-print-directory cluster; main=$$?; \
	wait $$beside; other=$$?; \
	cat $(LINT_LOG); \
	[ $$main -eq 0 ] && [ $$other -eq 0 ]
	@echo "==> pytest (unit, then the real clusters: the dev cluster's 22.05, and 24.11)"
	$(BIN)/pytest
	@echo "==> pytest: e2e cluster and job tests again, the service reaching Slurm over SSH"
	$(BIN)/pytest --slurm-runner=ssh -m ssh_subset tests/e2e

# Re-record the Slurm output fixtures from the dev cluster (after a Slurm upgrade).
record: cluster
	$(BIN)/python tests/fixtures/slurm-22.05/record.py

# A multi-host cluster of three VMs (vagrant/README.md). Not part of `make test`.
VAGRANT := cd vagrant && PATH=$(CURDIR)/$(BIN):$$PATH vagrant

vagrant-up: venv
	@if [ -z "$$BAI_VAGRANT_BOX" ] && ! vagrant box list 2>/dev/null | grep -q '^bai/bookworm '; then \
		echo "==> No bai/bookworm box: building one (vagrant/build-box.sh)"; vagrant/build-box.sh; fi
	@echo "==> Three VMs (vagrant/Vagrantfile), provisioned by ansible/site.yml (inventories/vagrant)"
	$(VAGRANT) up --provider=libvirt

vagrant-check:
	vagrant/check.sh

vagrant-down:
	$(VAGRANT) destroy -f
