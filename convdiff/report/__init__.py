"""Renderers: results in, rich renderables, JSON-ready dicts, JUnit XML and figures out. Nothing here prints."""
