/**
 * @module config
 * Every setting, read from the environment once and validated with zod. A bad value stops the process
 * at start with a message naming the variable; nothing else in the code reads process.env.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseTrustedProxies, type TrustedProxies } from './http/client-address.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalUrl = z.string().url().optional();

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().default('0.0.0.0'),
  PORT: int(0, 65535).default(3000),
  DATA_DIR: z.string().default('./data'),
  WORKERS: int(1, 64).default(Math.max(1, os.availableParallelism() - 1)),
  PARTITIONS: int(1, 4096).default(64),
  JOURNAL_SYNC: z.enum(['full', 'normal']).default('full'),
  SNAPSHOT_EVERY: int(1, 1_000_000).default(1000),
  HOLD_TTL_SECONDS: int(5, 3600).default(300),
  HOLD_MAX_SECONDS: int(5, 7200).default(900),
  MAX_SEATS_PER_USER: int(1, 100).default(10),
  // How long an on-sale's admission token lets its buyer hold seats (issue 17).
  ADMISSION_TTL_SECONDS: int(30, 24 * 3600).default(600),
  MAX_HELD_SEATS_PER_USER: int(1, 10_000).default(20),
  HOLDS_PER_ADDRESS_PER_MINUTE: int(1, 1_000_000).default(60),
  OFFER_VALIDATE_MAX_PER_MINUTE: int(1, 1_000_000).default(30),
  JWT_SECRET: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
  JWT_TTL_SECONDS: int(60, 30 * 24 * 3600).default(3600),
  TICKET_SIGNING_KEY: z.string().optional(),
  ADMIN_EMAIL: z.string().email().optional(),
  ADMIN_PASSWORD: z.string().min(8).optional(),
  SEED_DEMO: bool.default(true),
  // PostgreSQL for every store (app data and seats); unset = SQLite files under DATA_DIR.
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATABASE_POOL_MAX: int(1, 1000).default(10),
  // A cluster (issue 15; with DATABASE_URL): this node's name and where peers reach it, the secret
  // that authenticates requests between nodes, and how long a partition lease lasts unrenewed.
  NODE_ID: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'letters, digits and . _ : - only (at most 64)')
    .optional(),
  ADVERTISE_URL: optionalUrl,
  CLUSTER_SECRET: z.string().min(32, 'CLUSTER_SECRET must be at least 32 characters').optional(),
  LEASE_TTL_SECONDS: int(2, 600).default(5),
  // How often the booking sweeps run (expiry, settlement, and in a cluster the reconciliation of
  // bookings a dead node left).
  BOOKING_SWEEP_SECONDS: int(1, 3600).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(5000),
  REDIS_URL: optionalUrl,
  SMTP_URL: optionalUrl,
  MAIL_FROM: z.string().default('BoxOffice <tickets@boxoffice.local>'),
  SMS_WEBHOOK_URL: optionalUrl,
  REMINDER_MINUTES_BEFORE: int(0, 7 * 24 * 60).default(120),
  PAYMENT_PROVIDER: z.enum(['simulated', 'stripe']).default('simulated'),
  STRIPE_SECRET_KEY: z.string().optional(),
  STRIPE_WEBHOOK_SECRET: z.string().optional(),
  STRIPE_API_BASE: optionalUrl,
  CURRENCY: z.string().length(3).default('INR'),
  CONVENIENCE_FEE_PERCENT: z.coerce.number().min(0).max(50).default(2),
  CANCELLATION_CUTOFF_MINUTES: int(0, 7 * 24 * 60).default(120),
  BODY_LIMIT_BYTES: int(1024, 10 * 1024 * 1024).default(64 * 1024),
  LOGIN_MAX_FAILURES: int(1, 1000).default(5),
  LOGIN_WINDOW_SECONDS: int(1, 86400).default(900),
  LOGIN_MAX_BACKOFF_SECONDS: int(1, 86400).default(900),
  LOGIN_ACCOUNT_SLOWDOWN_AFTER: int(1, 100_000).default(20),
  LOGIN_ACCOUNT_MAX_DELAY_SECONDS: int(1, 3600).default(30),
  LOGIN_MAX_FAILURES_PER_ADDRESS: int(1, 1_000_000).default(100),
  REGISTER_MAX_PER_ADDRESS: int(1, 1_000_000).default(20),
  REGISTER_WINDOW_SECONDS: int(1, 86400).default(600),
  HASH_CONCURRENCY: int(1, 64).default(2),
  HASH_QUEUE_MAX: int(0, 10_000).default(64),
  SHUTDOWN_TIMEOUT_MS: int(100, 120_000).default(10_000),
  WS_MAX_BUFFERED_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  WS_MAX_FEEDS_PER_ADDRESS: int(1, 100_000).default(200),
  TRUSTED_PROXIES: z.string().optional(),
  METRICS_TOKEN: z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').optional(),
  // Never on by default: it lets an admin mint thousands of accounts and their tokens in one call.
  LOAD_TEST_MODE: bool.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof schema> & { dataDir: string; trustedProxies: TrustedProxies };

export class ConfigError extends Error {}

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  if (config.HOLD_MAX_SECONDS < config.HOLD_TTL_SECONDS)
    throw new ConfigError('invalid configuration:\n  HOLD_MAX_SECONDS: must be at least HOLD_TTL_SECONDS');
  if (config.PAYMENT_PROVIDER === 'stripe' && (!config.STRIPE_SECRET_KEY || !config.STRIPE_WEBHOOK_SECRET))
    throw new ConfigError(
      'invalid configuration:\n  STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET: required when PAYMENT_PROVIDER=stripe',
    );
  const trustedProxies = parseTrustedProxies(config.TRUSTED_PROXIES);
  if (typeof trustedProxies === 'string')
    throw new ConfigError(`invalid configuration:\n  TRUSTED_PROXIES: ${trustedProxies}`);
  return { ...config, dataDir: path.resolve(config.DATA_DIR), trustedProxies };
}
