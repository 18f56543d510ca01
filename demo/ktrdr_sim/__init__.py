"""A simulated KTRDR instrumented with the real OpenTelemetry Python SDK.

The simulator reproduces what KTRDR really emits (span names, kinds, attribute types and
quirks from ``shared/research/ktrdr.md``) so opdiag can be tested and demonstrated without a
running KTRDR. The clock and the tracer-provider factory are injected: the recorder runs the
scenarios on a simulated clock into in-memory exporters; a live mode can run the same scenario
functions on the wall clock with OTLP exporters.
"""

__all__: list[str] = []
