"""Verdicts from analysed traces, driven by YAML rule packs."""
