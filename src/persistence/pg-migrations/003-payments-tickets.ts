import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 003 (reserved, empty): recorded so both stores list the same migrations. */
export const p003: Migration = { id: 3, name: 'payments-tickets', sql: '' };
