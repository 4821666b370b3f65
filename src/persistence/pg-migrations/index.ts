/**
 * @module pg-migrations
 * PostgreSQL's ordered migrations: one twin per SQLite migration (`../migrations/`), same id and name,
 * so a database on either store records the same list. A new SQLite migration needs its twin here;
 * `test/persistence/schema-shape.test.ts` fails until both produce the same schema shape.
 */
import type { Migration } from '../migrations/index.js';
import { p001 } from './001-initial.js';
import { p002 } from './002-users-catalog.js';
import { p003 } from './003-payments-tickets.js';
import { p004 } from './004-notifications.js';
import { p005 } from './005-catalog-admin.js';
import { p006 } from './006-simulated-payments.js';
import { p007 } from './007-seat-release.js';
import { p008 } from './008-session-generations.js';
import { p009 } from './009-theater-time-zones.js';
import { p010 } from './010-one-live-booking-per-hold.js';
import { p011 } from './011-onsales.js';

export const PG_MIGRATIONS: readonly Migration[] = [
  p001,
  p002,
  p003,
  p004,
  p005,
  p006,
  p007,
  p008,
  p009,
  p010,
  p011,
];
