"""One module per `rein` subcommand."""
