import type { Migration } from './index.js';

/**
 * A session generation per user, carried in every token (`gen`): a password change moves it on, which
 * voids every earlier token except the one session that made the change (`kept_session_jti`). Tokens
 * are stateless JWTs, so they are not listed, only outdated.
 */
export const m008: Migration = {
  id: 8,
  name: 'session-generations',
  sql: `
ALTER TABLE users ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN kept_session_jti TEXT;
`,
};
