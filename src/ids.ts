/**
 * @module ids
 * Random, URL-safe, node-independent ids with a readable prefix (`usr_`, `shw_`, `bkg_` …).
 */
import { randomBytes } from 'node:crypto';

/** 16 random bytes → 22 base64url characters: collision-free at any scale we will see. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

/** Shorter ids for high-volume, show-scoped things (holds): 12 bytes → 16 characters. */
export function shortId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}
