"""Pure analysis of one trace: tree, self time, critical path, error chain.

``analyse(trace)`` computes everything once for the diagnosis engine; the steps live in
``self_time``, ``critical_path`` and ``errors``.
"""

from opdiag.analysis.critical_path import SYNTHETIC_ROOT_ID, CriticalPath, Section, critical_path
from opdiag.analysis.errors import ErrorChain, depths, error_chains
from opdiag.analysis.self_time import self_times, trace_statistics
from opdiag.analysis.summary import TraceAnalysis, analyse

__all__ = [
    "SYNTHETIC_ROOT_ID",
    "CriticalPath",
    "ErrorChain",
    "Section",
    "TraceAnalysis",
    "analyse",
    "critical_path",
    "depths",
    "error_chains",
    "self_times",
    "trace_statistics",
]
