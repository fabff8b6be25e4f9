"""pytest setup: import the package from this checkout; the library comes from
SAE_LIBRARY or the newest build*/ tree (see sae/_lib.py)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
