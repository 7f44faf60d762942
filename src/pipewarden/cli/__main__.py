"""`python -m pipewarden.cli` runs the `pipewarden` command."""

from pipewarden.cli import main

main()
