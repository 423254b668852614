import sys

from services.routing.cli import main

sys.exit(main())
