"""The `opdiag` command line."""
