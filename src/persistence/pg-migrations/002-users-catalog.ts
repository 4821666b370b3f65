import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 002 (reserved, empty): recorded so both stores list the same migrations. */
export const p002: Migration = { id: 2, name: 'users-catalog', sql: '' };
