"""The ``acir`` command line: the top of the import graph (it may use acir_core, pipelines, training)."""
