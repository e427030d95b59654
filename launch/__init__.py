"""The composition root: the one package that wires the layers together (DESIGN.md section 2).

`launch.cli` is the `kiosk` command: the core's commands (kiosk/cli.py) plus `run` and `demo`
(the Kivy UI), `hub` (the reference hub's own command) and `demo-cards`. `launch.demo` builds
the demo: an embedded hub on SQLite with the demo world, the reference web shop, a simulated
reader and the demo bar's taps. Nothing below this package imports it.
"""
