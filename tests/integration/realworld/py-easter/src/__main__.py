import sys

from easter.cli import main

sys.exit(main())
