"""Pure analysis of one trace: tree, self time, critical path, error chain."""
