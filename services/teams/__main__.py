import sys

from services.teams.cli import main

sys.exit(main())
