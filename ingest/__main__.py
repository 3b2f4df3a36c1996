from ingest.cli.main import main
from ingest.exit import exit_now

exit_now(main())
