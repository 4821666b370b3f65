/**
 * @module migrations
 * The ordered list of schema migrations. Add a new file with the next number; never edit a landed one.
 */
import { m001 } from './001-initial.js';
import { m002 } from './002-users-catalog.js';
import { m003 } from './003-payments-tickets.js';
import { m004 } from './004-notifications.js';
import { m005 } from './005-catalog-admin.js';
import { m006 } from './006-simulated-payments.js';
import { m007 } from './007-seat-release.js';
import { m008 } from './008-session-generations.js';
import { m009 } from './009-theater-time-zones.js';
import { m010 } from './010-one-live-booking-per-hold.js';
import { m011 } from './011-onsales.js';

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  m001,
  m002,
  m003,
  m004,
  m005,
  m006,
  m007,
  m008,
  m009,
  m010,
  m011,
];
