"""HTML diagnosis page and its SVG waterfall."""
