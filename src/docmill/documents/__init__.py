"""The documents domain: upload, analysis, estimation, processing and results."""
