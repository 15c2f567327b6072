from obsgen.cli import main

raise SystemExit(main())
