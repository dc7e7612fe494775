"""The benchmark: config -> grid -> tasks -> backends -> cell -> store."""

#: Where cells can run (``backend:`` in a config, ``--backend``); see :mod:`.backends`.
#: Defined here, away from the schema, so that ``lossval-odv --help`` loads no pydantic.
BACKEND_NAMES = ("auto", "serial", "local", "ray")
