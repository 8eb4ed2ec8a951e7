"""The `docmill` command line: thin Typer adapters over the services below."""
