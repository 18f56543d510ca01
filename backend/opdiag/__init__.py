"""opdiag: answers, not just data, from the traces of a distributed job system."""

__version__ = "0.1.0"
