"""`python -m dragedit`: the same as the `dragedit` command."""
import sys

from dragedit.pipeline.cli.main import main

sys.exit(main())
