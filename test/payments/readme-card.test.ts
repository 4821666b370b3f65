/**
 * The README's test card is one the simulated provider accepts: a newcomer who copies it, expiry and
 * CVC included, gets a payment through rather than INVALID_CARD.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkCard } from '../../src/payments/simulated-provider.js';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('the README’s test card', () => {
  it('shows a card payment body whose number, expiry and CVC the simulated provider accepts', () => {
    const example = /```json\n(\{[^\n]*"method": "card"[^\n]*\})\n```/.exec(readme)?.[1];
    expect(example, 'a json block with a card payment').toBeDefined();
    const body = JSON.parse(example ?? '{}') as { card: { number: string; expiry: string; cvc: string } };
    expect(checkCard(body.card, Date.now())).toMatchObject({ ok: true, brand: 'visa', last4: '4242' });
  });

  it('states the expiry and CVC formats, and the Amex CVC it shows is accepted', () => {
    expect(readme).toMatch(/expiry is `MM\/YY`/);
    const amex = /\(`([\d ]+)`, CVC `(\d+)`\)/.exec(readme);
    expect(amex, 'the Amex number and CVC').not.toBeNull();
    const card = { number: amex?.[1] ?? '', expiry: '12/34', cvc: amex?.[2] ?? '' };
    expect(checkCard(card, Date.now())).toMatchObject({ ok: true, brand: 'amex' });
  });
});
