"""Live mode: the simulated KTRDR on the wall clock, exporting OTLP and serving /metrics.

The scenarios are the recorder's, run on :class:`~ktrdr_sim.clock.RealClock` with OTLP/HTTP
exporters. Each KTRDR process that Prometheus scrapes (backend, workers) gets its own OS process
serving its own prometheus_client registry with KTRDR's metric names and labels.
"""
