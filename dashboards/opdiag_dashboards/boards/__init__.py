"""One module per dashboard; each exposes ``build(settings, json_datasource) -> Board``."""
