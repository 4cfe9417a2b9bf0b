// TrackerList.ready(): the list without waiting, only while no re-read is due.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrackerList } from '../src/core/trackers.js';

t.test('ready() answers without waiting only while the last check holds', async (t) => {
  const dir = t.testdir({ trackers: 'http://a.example/announce\n' });
  let clock = 0;
  const list = new TrackerList(join(dir, 'trackers'), { checkIntervalMs: 60_000, now: () => clock });
  t.equal(list.ready(), null, 'never read: not ready');
  t.same(await list.current(), ['http://a.example/announce']);
  t.same(list.ready(), ['http://a.example/announce'], 'just read: ready');
  writeFileSync(join(dir, 'trackers'), 'http://b.example/announce\n');
  clock += 59_999;
  t.same(list.ready(), ['http://a.example/announce'], 'inside the interval: the list as read');
  clock += 1;
  t.equal(list.ready(), null, 'a re-read is due: not ready');
  t.same(await list.current(), ['http://b.example/announce'], 'current() re-reads');
  t.same(list.ready(), ['http://b.example/announce']);
});

t.test('no trackers file configured: always ready, empty', async (t) => {
  t.same(new TrackerList(null).ready(), []);
});
