import sys

from sevis.cli.main import main

sys.exit(main())
