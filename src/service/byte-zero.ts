// Responses whose body is exactly byte 0 of their resource (all of a one-byte
// file, or `bytes 0-0`) end the connection. aria2 (1.36, and its source
// today) uses 0 as "no end byte known": it sends no Range for a one-byte file
// and reads a response ending at byte 0 as open-ended, so when that byte ends
// a piece (a one-byte pad, `1_k`, after a file one byte short of a piece
// boundary; or a one-byte file ending a piece of a mktorrent-layout torrent)
// it waits on the kept-alive connection for the next piece, which never
// comes, until the idle timeout closes it: 5 s per such file with node's
// default. `Connection: close` ends that wait at once and is correct HTTP for
// every client (a server may close after any response it marks so); the cost
// is one new connection per response with a one-byte body. The status stays
// what the request asked for: 200 to an unranged request (a 206 is only for a
// Range, and would end at byte 0 all the same). A front server (nginx,
// Apache) keeps its client connection open whatever we say, so it needs
// keep-alive off for these URLs itself: see pkgtorrent-service(8).

/** True when a response with this status, body length and Content-Range carries exactly byte 0. */
export function isByteZero(status: number, length: number, contentRange: unknown): boolean {
  return length === 1 && (status === 200 || (typeof contentRange === 'string' && contentRange.startsWith('bytes 0-0/')));
}
