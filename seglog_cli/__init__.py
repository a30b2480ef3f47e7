"""The ``seglog`` command line: a dispatcher over one module per subcommand."""
