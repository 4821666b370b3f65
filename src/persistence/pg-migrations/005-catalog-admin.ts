import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 005: archived movies, the screen-overlap index, ratings by movie. */
export const p005: Migration = {
  id: 5,
  name: 'catalog-admin',
  sql: `
ALTER TABLE movies ADD COLUMN archived_at text;
CREATE INDEX shows_screen_start ON shows (screen_id, start_time);
CREATE INDEX ratings_movie ON ratings (movie_id);
`,
};
