// The long part of `pkgtorrent make --help`: layouts, piece lengths, trackers
// and examples. Kept apart so make.ts stays flag parsing and two core calls.

export const MAKE_USAGE = `
Layouts:
  mktorrent (default)  PATH is one file (single-file torrent) or one directory
                       (multi-file torrent of every regular file below it,
                       hidden and empty files included, symlinks followed,
                       sorted by byte order of the path). The info dictionary
                       and info hash are those mktorrent 1.1 gives for the same
                       PATH, piece length, -n, -p and -s, and mktorrent's
                       command line works unchanged (-d, -t N, -v included).
                       Differences: an unreadable file is an error (mktorrent
                       leaves it out), and "." is named after the real
                       directory. One PATH only, as for mktorrent.
  service              PATHs are URL paths under --root (/pub/x.rpm),
                       percent-decoded as serve decodes them; no directories or
                       globs. The output is exactly the torrent 'pkgtorrent
                       serve' answers for them: one PATH gives its simple/
                       answer (single-file; a digest request for one path
                       gets a multi-file one), several their digest answer
                       (multi-file, BEP 47 padding). The piece cache is read and filled. Needs
                       --base-url (the mirror's scheme and host; the web seed is
                       made from it as serve makes it, so -w is refused);
                       further web seeds, the private flag and the source come
                       from the web-seeds, private and source settings, as for
                       serve, and -p and -s set the latter two. Trackers come
                       from -a, else the trackers file. -n and -c are not
                       available.

Piece length (-l, also spelt --piece-length after make):
  SIZE     bytes with an optional K or M suffix (256K, 1M), a power of two
           from 16K to 256M
  N        15 to 28: 2^N bytes, as mktorrent's -l (18 = 256K)
  auto     imdl's rule: 2^(E/2 + 4) bytes, E = ceil(log2(total size)), E/2
           rounded down, kept between 16K and 16M: 100 MiB -> 128K,
           1 GiB -> 512K, 4.7 GB -> 1M, 50 GiB -> 4M
  --piece-length, before or after make, is the same. Default: the
  piece-length setting from PKGTORRENT_PIECE_LENGTH or the config file (a
  SIZE), else 256K (mktorrent's) in the mktorrent layout and 1M in the
  service layout.

Trackers (-a) and web seeds (-w) as in mktorrent: each -a is a tier of
announce-list and a comma separates URLs of the same tier; the first URL is
'announce'. The magnet link carries every tracker (tr=) and web seed (ws=).
The torrent goes to NAME.torrent in the current directory unless -o says
otherwise; its directory must exist. '-o -' writes it to stdout (not to a
terminal without --force), and the info hash and magnet link to stderr. An
existing file is never replaced without --force, and no partial file is ever
left behind.

Examples:
  pkgtorrent make -a udp://tracker.example:6969/announce isos/
  pkgtorrent make -l auto -w https://mirror.example/pub/ -o big.torrent big.iso
  pkgtorrent make --layout service --root /srv/mirror --base-url https://mirror.example \\
      /pub/fedora/a.rpm /pub/fedora/b.rpm`;
