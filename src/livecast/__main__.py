from livecast.cli import main

raise SystemExit(main())
