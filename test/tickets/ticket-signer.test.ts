/**
 * Ticket codes: Ed25519-signed JWTs that a gate verifies offline with the published JWKS; keys kept in
 * the data directory or given by TICKET_SIGNING_KEY; rotation keeps old public keys verifying.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  generateTicketSigningKey,
  MAX_RETIRED_KEYS,
  TICKET_VALID_AFTER_START_SECONDS,
  TicketKeyError,
  TicketSigner,
  verifyTicketCode,
} from '../../src/tickets/ticket-signer.js';

const START = '2030-03-15T18:30:00.000Z';
const NOW = Date.parse('2030-03-10T09:00:00.000Z');
const ticket = {
  bookingId: 'bkg_abc',
  showId: 'shw_xyz',
  seats: ['A7', 'A8'],
  holderName: 'Asha Rao',
  userId: 'usr_1',
  startTime: START,
};

let dataDir: string;
let clock = NOW;
const now = () => clock;

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-tickets-'));
  clock = NOW;
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const keyFile = () => path.join(dataDir, 'secrets', 'ticket-keys.json');

describe('signing and verifying', () => {
  it('signs a compact token naming booking, show, seats and holder, and verifies it', async () => {
    const signer = TicketSigner.load({ dataDir }, now);
    const { code, kid } = signer.sign(ticket);
    expect(code.split('.')).toHaveLength(3);
    expect(kid).toBe(signer.kid);
    expect(decodeProtectedHeader(code)).toEqual({ alg: 'EdDSA', kid, typ: 'ticket+jwt' });
    const check = await signer.verify(code);
    expect(check).toEqual({
      valid: true,
      claims: {
        bookingId: 'bkg_abc',
        showId: 'shw_xyz',
        seats: ['A7', 'A8'],
        holderName: 'Asha Rao',
        userId: 'usr_1',
        startTime: START,
        issuedAt: new Date(NOW).toISOString(),
        expiresAt: new Date(Date.parse(START) + TICKET_VALID_AFTER_START_SECONDS * 1000).toISOString(),
        kid,
      },
    });
  });

  it('verifies offline with nothing but the published JWKS, which holds no private key', async () => {
    const signer = TicketSigner.load({ dataDir }, now);
    const { code } = signer.sign(ticket);
    const jwks = JSON.parse(JSON.stringify(signer.jwks()));
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({
      kty: 'OKP',
      crv: 'Ed25519',
      alg: 'EdDSA',
      use: 'sig',
      kid: signer.kid,
    });
    expect(jwks.keys[0].d).toBeUndefined();
    expect(await verifyTicketCode(code, jwks, { nowMs: NOW })).toMatchObject({
      valid: true,
      claims: { seats: ['A7', 'A8'] },
    });
    // Any standard JOSE library accepts it too.
    const { payload } = await jwtVerify(code, await importJWK(jwks.keys[0], 'EdDSA'), {
      currentDate: new Date(NOW),
    });
    expect(payload.sub).toBe('bkg_abc');
  });

  it('refuses a tampered token, one from another key, an unsigned one and garbage', async () => {
    const signer = TicketSigner.load({ dataDir }, now);
    const { code } = signer.sign(ticket);
    const [header, payload, signature] = code.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const moreSeats = Buffer.from(JSON.stringify({ ...claims, seats: ['A7', 'A8', 'A9'] })).toString(
      'base64url',
    );
    expect(await signer.verify(`${header}.${moreSeats}.${signature}`)).toEqual({
      valid: false,
      reason: 'invalid signature',
    });

    const stranger = TicketSigner.ephemeral(now);
    expect(await signer.verify(stranger.sign(ticket).code)).toEqual({
      valid: false,
      reason: 'unknown signing key',
    });
    // A stranger claiming our kid is caught by the signature.
    const impostorHeader = Buffer.from(
      JSON.stringify({ alg: 'EdDSA', kid: signer.kid, typ: 'ticket+jwt' }),
    ).toString('base64url');
    const impostor = stranger.sign(ticket).code.split('.');
    expect(await signer.verify(`${impostorHeader}.${impostor[1]}.${impostor[2]}`)).toMatchObject({
      valid: false,
    });

    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'ticket+jwt' })).toString('base64url');
    expect(await signer.verify(`${none}.${payload}.`)).toMatchObject({ valid: false });
    const hmac = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: signer.kid, typ: 'ticket+jwt' })
      .sign(new TextEncoder().encode('x'.repeat(32)));
    expect(await signer.verify(hmac)).toMatchObject({ valid: false });
    expect(await signer.verify('not-a-ticket')).toEqual({ valid: false, reason: 'malformed ticket code' });
    expect(await signer.verify('')).toEqual({ valid: false, reason: 'malformed ticket code' });
  });

  it('expires the ticket some hours after the show starts', async () => {
    const signer = TicketSigner.load({ dataDir }, now);
    const { code } = signer.sign(ticket);
    clock = Date.parse(START) + (TICKET_VALID_AFTER_START_SECONDS - 60) * 1000;
    expect((await signer.verify(code)).valid).toBe(true);
    clock = Date.parse(START) + (TICKET_VALID_AFTER_START_SECONDS + 60) * 1000;
    expect(await signer.verify(code)).toEqual({ valid: false, reason: 'ticket expired' });
  });

  it('refuses a ticket with no seats or too many', () => {
    const signer = TicketSigner.ephemeral(now);
    expect(() => signer.sign({ ...ticket, seats: [] })).toThrow(RangeError);
    expect(() =>
      signer.sign({ ...ticket, seats: Array.from({ length: 51 }, (_, i) => `A${i + 1}`) }),
    ).toThrow(RangeError);
    const fifty = signer.sign({ ...ticket, seats: Array.from({ length: 50 }, (_, i) => `AA${i + 1}`) });
    expect(fifty.code.length).toBeLessThan(2000);
  });
});

describe('keys', () => {
  it('generates a key once, keeps it private on disk, and signs with it after a restart', async () => {
    const first = TicketSigner.load({ dataDir }, now);
    expect(fs.statSync(keyFile()).mode & 0o777).toBe(0o600);
    const { code } = first.sign(ticket);
    const second = TicketSigner.load({ dataDir }, now);
    expect(second.kid).toBe(first.kid);
    expect((await second.verify(code)).valid).toBe(true);
  });

  it('rotates: new tickets use the new key, old tickets still verify, before and after a restart', async () => {
    const signer = TicketSigner.load({ dataDir }, now);
    const oldKid = signer.kid;
    const old = signer.sign(ticket).code;
    const newKid = signer.rotate();
    expect(newKid).not.toBe(oldKid);
    expect(signer.sign(ticket).kid).toBe(newKid);
    expect((await signer.verify(old)).valid).toBe(true);
    expect(signer.jwks().keys.map((k) => k.kid)).toEqual([newKid, oldKid]);

    const restarted = TicketSigner.load({ dataDir }, now);
    expect(restarted.kid).toBe(newKid);
    expect((await restarted.verify(old)).valid).toBe(true);
    // The retired key's private half is gone from disk.
    const ring = JSON.parse(fs.readFileSync(keyFile(), 'utf8'));
    expect(
      ring.keys.filter((k: { privateJwk?: unknown }) => k.privateJwk).map((k: { kid: string }) => k.kid),
    ).toEqual([newKid]);
  });

  it('keeps a bounded number of retired keys', () => {
    const signer = TicketSigner.load({ dataDir }, now);
    for (let i = 0; i < MAX_RETIRED_KEYS + 4; i++) {
      clock += 1000;
      signer.rotate();
    }
    expect(signer.jwks().keys).toHaveLength(1 + MAX_RETIRED_KEYS);
  });

  it('signs with TICKET_SIGNING_KEY, never writes its private half, and refuses to rotate it', async () => {
    const key = generateTicketSigningKey();
    const jwk = JSON.parse(key);
    const signer = TicketSigner.load({ dataDir, TICKET_SIGNING_KEY: key }, now);
    expect(signer.kid).toBe(jwk.kid);
    const { code } = signer.sign(ticket);
    expect((await signer.verify(code)).valid).toBe(true);
    expect(fs.readFileSync(keyFile(), 'utf8')).not.toContain(jwk.d);
    expect(() => signer.rotate()).toThrow(TicketKeyError);

    // A new TICKET_SIGNING_KEY retires the old one; its tickets still verify.
    const next = TicketSigner.load({ dataDir, TICKET_SIGNING_KEY: generateTicketSigningKey() }, now);
    expect(next.kid).not.toBe(signer.kid);
    expect((await next.verify(code)).valid).toBe(true);
  });

  it('retires a generated key when TICKET_SIGNING_KEY takes over', async () => {
    const generated = TicketSigner.load({ dataDir }, now);
    const code = generated.sign(ticket).code;
    const configured = TicketSigner.load({ dataDir, TICKET_SIGNING_KEY: generateTicketSigningKey() }, now);
    expect((await configured.verify(code)).valid).toBe(true);
    expect(configured.jwks().keys.map((k) => k.kid)).toEqual([configured.kid, generated.kid]);
  });

  it('refuses a TICKET_SIGNING_KEY that is not an Ed25519 private JWK', () => {
    const { d: _, ...publicOnly } = JSON.parse(generateTicketSigningKey());
    for (const bad of ['not json', '{"kty":"RSA"}', JSON.stringify(publicOnly)])
      expect(() => TicketSigner.load({ dataDir, TICKET_SIGNING_KEY: bad }, now)).toThrow(TicketKeyError);
    const mismatched = {
      ...JSON.parse(generateTicketSigningKey()),
      x: JSON.parse(generateTicketSigningKey()).x,
    };
    expect(() => TicketSigner.load({ dataDir, TICKET_SIGNING_KEY: JSON.stringify(mismatched) }, now)).toThrow(
      TicketKeyError,
    );
  });
});
