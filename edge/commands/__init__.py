"""One module per `fabedge` subcommand; each defines add_arguments(parser) and run(args) -> int."""
