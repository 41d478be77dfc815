from secretscan.cli import main

raise SystemExit(main())
