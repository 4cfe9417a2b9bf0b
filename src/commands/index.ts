// Every command of the binary, in the order `--help` lists them. A command
// module defines its flags and usage next to its code and returns its Command.
import type { Command } from 'commander';
import type { Context } from '../cli/context.js';
import { register as hash } from './hash.js';
import { register as make } from './make.js';
import { register as cache } from './cache.js';
import { register as trackers } from './trackers.js';
import { register as config } from './config.js';
import { register as serve } from './serve.js';

export type Register = (program: Command, ctx: Context) => Command;

export const COMMANDS: Register[] = [hash, make, cache, trackers, config, serve];
