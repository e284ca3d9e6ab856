"""Shared test set-up: tests import helpers from each other by module name, and Parlant (imported by
the adapter's tests) writes its files under a temporary PARLANT_HOME, never into the checkout."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PARLANT_HOME", tempfile.mkdtemp(prefix="parlant-home-"))
