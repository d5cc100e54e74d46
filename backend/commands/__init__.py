"""The command line: argument types, then one module per subcommand (`main` puts them together)."""
