"""Jobs: work orders over some assets, with their status machine."""
