#!/usr/bin/env node
import { configFromArgs, run } from './cli.js';

await run(configFromArgs(process.argv.slice(2)));
