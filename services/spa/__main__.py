import sys

from services.spa.cli import main

sys.exit(main())
