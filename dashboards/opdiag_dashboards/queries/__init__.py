"""One small function per query: settings in, a query string out. Panels only assemble them."""
