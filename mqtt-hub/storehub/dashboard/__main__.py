import sys

from storehub.dashboard.cli import main

sys.exit(main())
