"""The live runtime in small parts, each tested without a broker: offset guard, watermark hold, checkpoint,
metrics, stall watchdog. The Faust-facing glue is ``streams/live.py`` and ``streams/faust_compat.py``."""
