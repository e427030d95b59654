"""Entry point of the PyInstaller bundle: the same `kiosk` command."""
import sys

from launch.cli import main

sys.exit(main())
