"""The suite's single entry point, ``mathlora <command> ...`` (console script of setup.py); its table of
commands is :data:`mathlora.__main__.COMMANDS`."""
