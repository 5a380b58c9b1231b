import sys

from acir_cli.app import main

sys.exit(main())
