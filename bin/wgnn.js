#!/usr/bin/env node
// The `wgnn` command: runs the compiled CLI (npm run build first).
import '../dist/src/cli/main.js';
