import type { Migration } from './index.js';

/** Reserved for changes to the payments-tickets tables; empty migrations are recorded and skipped. */
export const m003: Migration = { id: 3, name: 'payments-tickets', sql: '' };
