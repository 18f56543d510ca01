"""Live mode: the simulated KTRDR as separate processes talking real HTTP.

Each role (backend, backtest and training workers, IB host service, the CLI driver) is its own
OS process with its own TracerProvider exporting OTLP/HTTP, its own prometheus_client registry
served on ``/metrics``, and real HTTP between the processes with W3C ``traceparent`` injected
and extracted by the real propagator, so traces cross processes as in KTRDR. See README.md here.
"""
