"""Mitogen's `linear` strategy, from the mitogen package in bai's virtualenv (its own plugin
lives inside that package, whose path ansible.cfg cannot name). Mitogen runs every task in one
kept Python per host instead of one new Python per task and loop item: the dev playbook takes
21 s instead of 69 s on the 2-core machine. The dev paths (Makefile, tests/cluster.py) choose
it with ANSIBLE_STRATEGY=mitogen_linear; other inventories keep Ansible's own `linear`."""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
