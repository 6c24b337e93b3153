"""Stream processing: pure state logic (``state``, ``windows``, ``interventions``) and the thin
Faust app (``app``) that drives it from Kafka."""
