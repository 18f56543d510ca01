"""Renderers of a Diagnosis: JSON, Markdown, table rows."""
