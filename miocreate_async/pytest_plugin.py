"""pytest fixtures for users' tests: a running emulator and a client bound to it."""
