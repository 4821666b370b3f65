import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 008: a session generation per user. */
export const p008: Migration = {
  id: 8,
  name: 'session-generations',
  sql: `
ALTER TABLE users ADD COLUMN session_generation bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN kept_session_jti text;
`,
};
