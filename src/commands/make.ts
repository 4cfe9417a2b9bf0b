// `pkgtorrent make PATH...`: a one-off torrent from a shell. By default the
// info dictionary is byte for byte the one mktorrent builds for the same input
// and piece length; `--layout service` builds the torrent `serve` would answer.
import { Option, type Command } from '@commander-js/extra-typings';
import { resolve } from 'node:path';
import type { AnyCommand, Context } from '../cli/context.js';
import { collect } from '../cli/setting-options.js';
import { byteProgress } from '../cli/progress.js';
import { plural } from '../cli/text.js';
import { usageError } from '../core/errors.js';
import { torrentNameFor } from '../core/file-list.js';
import { defaultJobs } from '../core/hasher.js';
import { MKTORRENT_PIECE_LENGTH, parseTorrentPieceLength, type PieceLengthSpec } from '../core/piece-length.js';
import type { SettingKey } from '../core/config.js';
import { announceTiers, checkTorrentName, makePlainTorrent, webSeeds, type MadeTorrent } from '../core/plain-torrent.js';
import { formatBytes } from '../core/size.js';
import { checkOutputFree, writeTorrentOutput } from '../core/torrent-output.js';
import { MAKE_USAGE } from './make-usage.js';

/** What `make` reports, on stdout or as --json. */
export interface MakeResult extends Omit<MadeTorrent, 'bytes'> {
  output: string;
  layout: 'mktorrent' | 'service';
  /** Service layout: files hashed now and files whose hashes came from the piece cache. */
  filesHashed?: number;
  filesCached?: number;
}

/** make's flags; their types are inferred from these declarations. */
function define(program: Command) {
  return program
    .command('make')
    .description('make a torrent from a file or directory (mktorrent-compatible), or a service torrent')
    .argument('<path...>', 'a file or directory; root-relative paths with --layout service')
    .option('-a, --announce <url>', 'tracker announce URL; repeat for more tiers, commas within a tier', collect)
    .option('-w, --web-seed <url>', 'web seed URL (BEP 19); repeatable, commas allowed', collect)
    .option('-o, --output <file>', "where to write the torrent, '-' for stdout (default: NAME.torrent)")
    .option('-n, --name <name>', 'torrent name (default: base name of PATH)')
    .option('-c, --comment <text>', 'comment')
    .option('-p, --private', 'set the private flag (inside info: changes the info hash)')
    .option('-s, --source <text>', 'source string (inside info: changes the info hash)')
    .option('-l, --piece-length <size>', 'SIZE (256K, 1M), N for 2^N as mktorrent, or auto; see below')
    .option('-d, --no-date', 'leave out the creation date')
    .addOption(new Option('-j, --jobs <n>', 'hash worker threads, 0 for one per core (default)').conflicts('threads'))
    .option('-t, --threads <n>', "the same as -j (mktorrent's name)")
    .addOption(new Option('-v, --verbose', 'also list the files put into the torrent').conflicts('json'))
    .addOption(new Option('--layout <layout>', 'torrent layout').choices(['mktorrent', 'service']).default('mktorrent'))
    .option('--base-url <url>', 'service layout: scheme and host of the mirror, as for serve')
    .option('--json', 'print the result as JSON')
    .option('--force', 'replace an existing output file')
    .addHelpText('after', MAKE_USAGE);
}

type MakeOptions = ReturnType<ReturnType<typeof define>['opts']>;

export function register(program: Command, ctx: Context): AnyCommand {
  return define(program).action(async (paths, opts, cmd) => {
    // --piece-length is -l's long name; commander hands it to the program
    // wherever it stands, so both places are read.
    const text = opts.pieceLength ?? (cmd.parent?.opts() as { pieceLength?: string }).pieceLength;
    const spec = text === undefined ? undefined : parseTorrentPieceLength(text);
    const result = opts.layout === 'service' ? await makeService(ctx, cmd, paths, opts, spec) : await makeMktorrent(ctx, cmd, paths, opts, spec);
    report(ctx, result, opts);
  });
}

/**
 * The settings, with -l (already parsed: it also takes N and auto, which the
 * setting does not) in place of the piece-length setting.
 */
function pieceSettings(ctx: Context, cmd: AnyCommand, opts: MakeOptions, spec: PieceLengthSpec | undefined, extra: Partial<Record<SettingKey, string | boolean>> = {}) {
  const given = spec === undefined ? {} : { 'piece-length': spec === 'auto' ? MKTORRENT_PIECE_LENGTH : spec };
  return ctx.resolve(cmd, { ...extra, ...given, jobs: opts.jobs ?? opts.threads });
}

/** Where the torrent goes, absolute, or '-'. */
function outputPath(ctx: Context, opts: MakeOptions, name: string): string {
  if (opts.output === '-') return '-';
  return resolve(ctx.env.cwd, opts.output ?? `${name}.torrent`);
}

async function makeMktorrent(ctx: Context, cmd: AnyCommand, paths: string[], opts: MakeOptions, spec: PieceLengthSpec | undefined): Promise<MakeResult> {
  if (paths.length !== 1) {
    throw usageError(`make takes one PATH, a file or a directory (got ${paths.length}); to combine files, put them in a directory or use --layout service`);
  }
  if (opts.baseUrl !== undefined) throw usageError('--base-url is for --layout service; use -w for web seeds');
  const tiers = announceTiers(opts.announce ?? []);
  const seeds = webSeeds(opts.webSeed ?? []);
  const name = opts.name === undefined ? undefined : checkTorrentName(opts.name);
  const target = resolve(ctx.env.cwd, paths[0]!);

  const torrentName = name ?? (await torrentNameFor(paths[0]!, target));
  const output = outputPath(ctx, opts, torrentName);
  await checkOutputFree(output, opts.force, ctx.env.stdout);
  const settings = await pieceSettings(ctx, cmd, opts, spec);
  // The piece-length setting from the environment or config file counts as for every command; unset, mktorrent's default.
  const pieceLength = spec ?? (settings.sources['piece-length'] === 'default' ? undefined : settings.values['piece-length']);
  // -v lists the files after the torrent is written, as they went in.
  let listing = '';
  const { bytes, ...summary } = await makePlainTorrent({
    target,
    display: paths[0]!,
    output,
    name: torrentName,
    pieceLength,
    private: opts.private,
    source: opts.source,
    tiers,
    webSeeds: seeds,
    comment: opts.comment,
    creationDate: opts.date ? Math.floor(Date.now() / 1000) : undefined,
    jobs: settings.values.jobs || defaultJobs(),
    signal: ctx.env.signal,
    progress: ctx.env.stderr.isTTY ? (total) => byteProgress(ctx.env.stderr, total, 'hashing') : undefined,
    onFile: opts.verbose ? (path, size) => void (listing += `  ${path}  ${formatBytes(size)}\n`) : undefined,
  });
  await writeTorrentOutput(output, bytes, opts.force, ctx.env.stdout);
  if (listing) ctx.env.stderr.write(listing);
  return { ...summary, output, layout: 'mktorrent' };
}

async function makeService(ctx: Context, cmd: AnyCommand, paths: string[], opts: MakeOptions, spec: PieceLengthSpec | undefined): Promise<MakeResult> {
  for (const [flag, given] of [
    ['-n', opts.name],
    ['-c', opts.comment],
  ] as const) {
    if (given !== undefined) throw usageError(`${flag} is not available with --layout service: the service torrent is fixed by its files`);
  }
  if (spec === 'auto') throw usageError('-l auto is not available with --layout service: it uses the service piece length (--piece-length, 1M by default)');
  // -w would be the whole web seed elsewhere but only its base here: refused rather than guessed.
  if (opts.webSeed) {
    throw usageError('-w is not taken with --layout service: give the mirror with --base-url URL and further mirrors with the web-seeds setting; the web seeds are made from them and the paths');
  }
  const tiers = announceTiers(opts.announce ?? []);

  // -p and -s are the private and source settings here (as serve takes them
  // from the config file or the environment): one meaning, mktorrent's.
  const settings = await pieceSettings(ctx, cmd, opts, spec, { 'base-url': opts.baseUrl, private: opts.private, source: opts.source });
  const baseUrl = settings.values['base-url'];
  if (!baseUrl) throw usageError('--layout service needs the base URL of the mirror: --base-url https://mirror.example');
  const pieceLength = settings.values['piece-length'];
  // Loaded here: the service layout's modules (globs, the piece cache) are a
  // noticeable part of a short mktorrent-layout run that never uses them.
  const [{ makeServiceTorrent, resolveServicePaths }, { TrackerList }] = await Promise.all([import('../core/make-service.js'), import('../core/trackers.js')]);
  const cacheDir = await ctx.cacheDir(cmd);
  // As in serve: the cache is never part of the mirror.
  const root = (await ctx.root(cmd)).hiding(cacheDir);
  const files = await resolveServicePaths(root, paths, { maxMatches: settings.values['max-glob-matches'] });
  const output = outputPath(ctx, opts, files.length === 1 ? files[0]!.rel.split('/').pop()! : files[0]!.rel.split('/')[0]!);
  await checkOutputFree(output, opts.force, ctx.env.stdout);
  const trackers = tiers.length ? tiers.flat() : await new TrackerList(settings.values.trackers, { warn: (m) => ctx.warn(m) }).current();

  const { bytes, hashed, ...summary } = await makeServiceTorrent({
    files,
    cacheDir,
    pieceLength,
    serviceName: settings.values['service-name'],
    baseUrl,
    webSeeds: settings.values['web-seeds'],
    infoSettings: { private: settings.values.private, source: settings.values.source },
    trackers,
    jobs: settings.values.jobs || defaultJobs(),
    signal: ctx.env.signal,
    warn: (m) => ctx.warn(m),
    progress: (total) => byteProgress(ctx.env.stderr, total, 'hashing'),
  });
  await writeTorrentOutput(output, bytes, opts.force, ctx.env.stdout);
  return { ...summary, output, layout: 'service', filesHashed: hashed, filesCached: files.length - hashed };
}

function report(ctx: Context, r: MakeResult, opts: MakeOptions): void {
  // With the torrent on stdout, everything else goes to stderr.
  const write = (line: string) => (r.output === '-' ? ctx.env.stderr.write(line + '\n') : ctx.out(line));
  if (opts.json) {
    write(JSON.stringify(r));
    return;
  }
  if (r.output !== '-') {
    write(`wrote ${r.output}: ${plural(r.files, 'file')}, ${formatBytes(r.size)}, ${plural(r.pieces, 'piece')} of ${formatBytes(r.pieceLength)}`);
  }
  write(`info hash: ${r.infoHash}`);
  write(`magnet: ${r.magnet}`);
}
