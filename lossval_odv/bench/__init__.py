"""The benchmark: config -> grid -> tasks -> backends -> cell -> store."""
