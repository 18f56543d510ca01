"""The verdict store: every verdict the watcher records, for lists, counts, alerts and
annotations that are fast and outlive Jaeger's retention (SQLite by default, PostgreSQL for
several replicas; see ``factory.open_store``)."""
