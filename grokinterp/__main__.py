from grokinterp.cli import main

raise SystemExit(main())
