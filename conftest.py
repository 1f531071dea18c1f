import os

# Fast password hashing and in-memory e-mail: see the test section of flywheel/settings.py.
os.environ.setdefault("DJANGO_ENV", "test")
