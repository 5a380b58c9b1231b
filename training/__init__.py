"""The torch side of acir (GCA networks, losses, data loading, training, evaluation).

Imports flow one way: this package uses acir_core; acir_core never imports it.
"""
