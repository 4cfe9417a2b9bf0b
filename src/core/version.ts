import { readFileSync } from 'node:fs';

// src/core and dist/core are both two levels below package.json.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const VERSION: string = pkg.version;
export const CREATED_BY = `pkgtorrent/${VERSION}`;
