"""One module per `dragedit` subcommand, in the order `dragedit --help` lists them."""

COMMANDS = ("edit", "drag", "composite", "history", "preview", "presets", "batch", "serve", "align", "invert",
            "generate", "models")
