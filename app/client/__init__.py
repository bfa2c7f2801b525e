"""The `nube` command-line client: a Nube controller's HTTP API from a shell, standard library only."""
