from agent.frontends.cli import main

raise SystemExit(main())
