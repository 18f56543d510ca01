"""Developer tools: stand-ins for services we cannot run on build machines (a Jaeger that
replays recorded responses), used by tests, the load benchmark and demos."""
