"""Apache Beam pipelines (dataset generation, archive restoration) built on acir_core.

Imports flow one way: this package uses acir_core; acir_core never imports it.
"""
