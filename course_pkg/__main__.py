from course_pkg.cli import main

raise SystemExit(main())
