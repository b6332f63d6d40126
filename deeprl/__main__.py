from deeprl.cli import main

raise SystemExit(main())
