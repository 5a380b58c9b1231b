"""The per-photo engine: from a photo's bytes to its restored image, mask and record, and from a
set of inputs to an output folder with ``summary.json`` and ``report.html``.

It sits between the pure library (``acir_core``) and the shells that drive it (the ``acir``
command and the Beam pipelines); training builds its examples through it too. It imports
``acir_core`` only, and reaches the GCA network lazily through :mod:`acir_engine.network`."""
