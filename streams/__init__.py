"""Stream processing: the processor seam (``processor``, ``registry``), Vigie's processors (``processors/``) and
their pure logic (``state``, ``windows``, ``crewing``, ``interventions``), the batch path (``batch``), and the live
runtime (``runtime/`` parts, ``live`` and ``faust_compat`` for Faust)."""
