# DJANGO_ENV=test is set by flywheel/pytest_plugin.py, which pytest loads before pytest-django
# reads the settings; a conftest runs too late for that.
