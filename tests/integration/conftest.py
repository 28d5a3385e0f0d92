"""pytest set-up for the QEMU integration tests: make `import ringlet` work."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
