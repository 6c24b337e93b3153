"""The bottom layer: settings and the row/table types every other layer may use."""
