#!/usr/bin/env node
// The installed command. Runs the compiled JavaScript, so production never needs tsx.
import '../dist/cli/run.js';
