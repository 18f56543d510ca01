"""Trace sources: files and directories of exported traces, or a live Jaeger."""
