//! Template archives (tar): reading `kiln.json` and extracting safely. (Being written.)
