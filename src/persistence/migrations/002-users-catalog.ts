import type { Migration } from './index.js';

/** Reserved for changes to the users-catalog tables; empty migrations are recorded and skipped. */
export const m002: Migration = { id: 2, name: 'users-catalog', sql: '' };
