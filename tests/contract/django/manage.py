#!/usr/bin/env python
"""The reference Django project of the differential compat test (see tests/contract/README)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
