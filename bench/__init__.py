"""Benchmark harness for opdiag (not part of the test suite): generated KTRDR-shaped traces
and a timing/memory comparison of ``opdiag diagnose`` against a jq one-liner."""
