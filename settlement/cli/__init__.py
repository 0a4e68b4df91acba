"""The `settlement` command line: `main` builds the parser from one module per
command group, each adding its subcommands; `common` holds what they share."""
