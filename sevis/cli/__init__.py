"""The `sevis` command line."""
