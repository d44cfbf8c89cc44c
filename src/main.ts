#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=96 --no-turbofan --single-threaded-gc
import { configFromArgs, run } from './cli.js';

await run(configFromArgs(process.argv.slice(2)));
