// route(): which handler a request target goes to, on the decoded path.
import t from 'tap';
import { PkgError } from '../src/core/errors.js';
import { route } from '../src/service/router.js';

const SVC = 'torrent_service';
const D = 'ab'.repeat(20);

function kindOf(url: string): string {
  try {
    return JSON.stringify(route(url, SVC));
  } catch (e) {
    return e instanceof PkgError ? `${e.kind}: ${e.message}` : String(e);
  }
}

t.test('service routes under any single prefix', async (t) => {
  t.same(route(`/pub/${SVC}/digest/${D}`, SVC), { kind: 'digest', digest: D });
  t.same(route(`/pub/${SVC}/digest/${D.toUpperCase()}`, SVC), { kind: 'digest', digest: D }, 'upper-case hex is folded');
  t.same(route(`/yum/torrent%5Fservice/nullfile/145605%5F0`, SVC), { kind: 'nullfile', size: 145605 }, 'matched on the decoded path');
  t.same(route(`/pub/${SVC}/simple/pub/x/*.rpm?q=1`, SVC), { kind: 'simple', path: '/pub/x/*.rpm' }, 'the query is not part of the path');
  t.same(route(`/pub/${SVC}/single/a/b`, SVC), { kind: 'simple', path: '/a/b' });
});

t.test('anything else is a file path', async (t) => {
  for (const url of ['/', '/pub', `/pub/${SVC}`, `//${SVC}/digest/${D}`, `/pub/other/digest/${D}`, `/pub/${SVC}x/digest/${D}`, `/a/b/${SVC}/digest/${D}`]) {
    t.same(route(url, SVC), { kind: 'file', path: url }, url);
  }
});

t.test('malformed service requests get one clear error', async (t) => {
  t.match(kindOf(`/pub/${SVC}/digest/${D}/`), /^bad-request: malformed digest/, 'trailing slash');
  t.match(kindOf(`/pub/${SVC}/digest/${D}/x`), /^bad-request: malformed digest/);
  t.match(kindOf(`/pub/${SVC}/digest`), /^bad-request: malformed digest/, 'no digest segment');
  t.match(kindOf(`/pub/${SVC}/digest/${D.slice(1)}`), /^bad-request: malformed digest/, '39 digits');
  t.match(kindOf(`/pub/${SVC}/digest/${'g'.repeat(40)}`), /^bad-request: malformed digest/);
  t.match(kindOf(`/pub/${SVC}/simple/`), /^bad-request: simple\/ needs a path/);
  t.match(kindOf(`/pub/${SVC}/simple`), /^bad-request: simple\/ needs a path/);
  t.match(kindOf(`/pub/${SVC}/nullfile/7`), /^not-found: no such null file/);
  t.match(kindOf(`/pub/${SVC}/nullfile/7_0/x`), /^not-found: no such null file/);
  t.match(kindOf(`/pub/${SVC}/`), /^not-found: unknown service route ''/);
  t.match(kindOf(`/pub/${SVC}/what/x`), /^not-found: unknown service route 'what'/);
  t.match(kindOf(`/pub/${SVC}/digest/%zz`), /^bad-request: malformed percent-encoding/);
  t.match(kindOf('pub/x'), /^bad-request: request target must be an absolute path/);
});
