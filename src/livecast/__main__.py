from livecast.command import main

raise SystemExit(main())
