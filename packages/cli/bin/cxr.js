#!/usr/bin/env node
// The `cxr` binary. A committed launcher (not the build output itself) so that `npm ci` links it even though
// the build that writes dist/ runs after the links are made.
import '../dist/cli.js';
