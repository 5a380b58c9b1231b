"""JPEG bitstream handling: header segments now; the robust decoder builds on them."""
