"""Flask app: REST for Infinity, the simpod protocol, pages, health."""
