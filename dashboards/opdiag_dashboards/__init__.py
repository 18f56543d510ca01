"""Grafana dashboards for opdiag and KTRDR, written with grafanalib, plus the provisioning writer.

Kept import-light on purpose: ``opdiag.settings`` imports ``opdiag_dashboards.config`` for the
``dashboards`` settings section, so nothing here may import ``opdiag`` at package import time.
Entry point: :func:`opdiag_dashboards.cli.generate`.
"""
