"""Tax documents (SPEC §12): payment statements, withholding per month and its
remittance, the annual 支払調書 data."""
