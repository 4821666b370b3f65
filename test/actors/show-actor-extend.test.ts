/**
 * Extending a hold: the contract's extend adds the TTL to the current expiry, capped from creation; an
 * extend journaled before `extendFrom` existed replays as it ran then (from the time of the command).
 */
import { describe, expect, it } from 'vitest';
import { compileLayout } from '../../src/actors/seat-layout.js';
import { apply, createShowState, type ShowState } from '../../src/actors/show-actor.js';

const compiled = compileLayout({ rows: [{ label: 'A', category: 'GOLD', seats: 4 }] });
if (!compiled.ok) throw new Error(compiled.message);
const layout = compiled.layout;

function heldShow(): ShowState {
  const state = createShowState('shw_x', layout, 'key', false);
  const held = apply(state, {
    type: 'hold',
    holdId: 'h1',
    ownerId: 'u1',
    seats: ['A1'],
    nowMs: 0,
    expiresAtMs: 1000,
    maxSeatsPerOwner: 4,
  });
  expect(held.reply.ok).toBe(true);
  return state;
}

const extend = (nowMs: number, extendFrom?: 'expiry') => ({
  type: 'extend' as const,
  holdId: 'h1',
  ownerId: 'u1',
  nowMs,
  extendByMs: 1000,
  maxLifetimeMs: 2500,
  ...(extendFrom ? { extendFrom } : {}),
});

describe('extend', () => {
  it('adds the extension to the current expiry, up to the maximum lifetime from creation', () => {
    const state = heldShow();
    expect(apply(state, extend(100, 'expiry')).reply).toMatchObject({
      ok: true,
      hold: { expiresAtMs: 2000 },
    });
    expect(apply(state, extend(200, 'expiry')).reply).toMatchObject({
      ok: true,
      hold: { expiresAtMs: 2500 },
    });
  });

  it('replays an extend journaled without extendFrom from the time of the command', () => {
    const state = heldShow();
    expect(apply(state, extend(100)).reply).toMatchObject({ ok: true, hold: { expiresAtMs: 1100 } });
  });
});
