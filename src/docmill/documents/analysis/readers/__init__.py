"""One reader per format: bytes in, a ``ParsedDocument`` of blocks out."""
