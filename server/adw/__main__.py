from adw.cli import main

raise SystemExit(main())
