// The URL rules of every place a URL goes into a torrent, in one table: each
// row is a text and what each rule says of it (null: accepted).
import t from 'tap';
import { announceUrlProblem, baseUrlProblem, webSeedUrlProblem } from '../src/core/urls.js';

type Row = [text: string, announce: string | null, makeAnnounce: string | null, webSeed: string | null, baseUrl: string | null];
const SCHEME_3 = '(use http, https or udp)';
const ROWS: Row[] = [
  ['http://t.example/announce', null, null, null, null],
  ['https://t.example:8443/announce?passkey=abc', null, null, null, null],
  ['udp://t.example:6969/announce', null, null, `unsupported scheme 'udp' (use http, https or ftp)`, `unsupported scheme 'udp' (use http or https)`],
  ['udp://t.example/announce', 'udp tracker without a port', 'udp tracker without a port', `unsupported scheme 'udp' (use http, https or ftp)`, `unsupported scheme 'udp' (use http or https)`],
  ['udp:///announce', 'no host', 'no host', `unsupported scheme 'udp' (use http, https or ftp)`, `unsupported scheme 'udp' (use http or https)`],
  ['wss://t.example/announce', `unsupported scheme 'wss' ${SCHEME_3}`, null, `unsupported scheme 'wss' (use http, https or ftp)`, `unsupported scheme 'wss' (use http or https)`],
  ['ftp://mirror.example/pub/', `unsupported scheme 'ftp' ${SCHEME_3}`, `unsupported scheme 'ftp' (use http, https, udp, ws or wss)`, null, `unsupported scheme 'ftp' (use http or https)`],
  ['not a url', 'not a URL', 'not a URL', 'not a URL', 'not a URL'],
  ['http://user:pw@t.example/announce', 'credentials are not allowed in a tracker URL', 'credentials are not allowed in a tracker URL', null, null],
  ['http://t.example:0/announce', 'port 0', 'port 0', null, null],
  ['http://t.example/announce#x', "fragment '#x' is never sent to a tracker", "fragment '#x' is never sent to a tracker", null, null],
  ['http://mirror.example/a b', 'contains whitespace', 'contains whitespace', null, null],
  ['https://mirror.example', null, null, null, null],
];

for (const [text, announce, makeAnnounce, webSeed, baseUrl] of ROWS) {
  t.test(text, async (t) => {
    t.equal(announceUrlProblem(text), announce, 'trackers file, serve, trackers check');
    t.equal(announceUrlProblem(text, { webTorrent: true }), makeAnnounce, 'make -a');
    t.equal(webSeedUrlProblem(text), webSeed, 'make -w');
    t.equal(baseUrlProblem(text), baseUrl, 'base-url');
  });
}
