"""One module per capability: `run(conn, scale, rng, tick) -> dict[str, int]`."""
