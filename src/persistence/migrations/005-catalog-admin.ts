import type { Migration } from './index.js';

/**
 * Catalog administration support.
 * - `movies.archived_at`: a deleted movie is archived, not removed, because past shows, bookings and
 *   tickets still name it. Archived movies leave the public catalog.
 * - `shows_screen_start`: the overlap check when a show is scheduled on a screen reads by (screen, start).
 * - `ratings_movie`: recomputing a movie's average after a rating reads every rating of that movie.
 */
export const m005: Migration = {
  id: 5,
  name: 'catalog-admin',
  sql: `
ALTER TABLE movies ADD COLUMN archived_at TEXT;
CREATE INDEX shows_screen_start ON shows (screen_id, start_time);
CREATE INDEX ratings_movie ON ratings (movie_id);
`,
};
