"""Documents users receive (SPEC §12): the same data as JSON, CSV and A4 PDF."""
