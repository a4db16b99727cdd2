"""The `dragedit` command line: `main.py` parses and reports, `options.py` holds the option groups, and each
subcommand is one module in `commands/` with `add_parser(sub)` and `run(args)`. Importing it loads no torch."""
