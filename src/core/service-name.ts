// The default path segment that routes to the service. Its own module so the
// settings table can name it without loading the torrent layout code.
export const DEFAULT_SERVICE_NAME = 'torrent_service';
