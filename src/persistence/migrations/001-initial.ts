import type { Migration } from './index.js';

/**
 * The first schema. Times are ISO-8601 UTC text (they sort as text); money is integer minor units.
 * JSON columns hold small arrays and maps that are always read whole.
 */
export const m001: Migration = {
  id: 1,
  name: 'initial',
  sql: `
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  phone TEXT,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE revoked_tokens (
  jti TEXT PRIMARY KEY,
  expires_at TEXT NOT NULL
);

CREATE TABLE movies (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  genres TEXT NOT NULL DEFAULT '[]',
  language TEXT NOT NULL,
  duration_min INTEGER NOT NULL,
  certificate TEXT NOT NULL,
  rating REAL NOT NULL DEFAULT 0,
  votes INTEGER NOT NULL DEFAULT 0,
  release_date TEXT NOT NULL,
  poster_url TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX movies_language ON movies (language);
CREATE INDEX movies_rating ON movies (rating);

CREATE TABLE movie_genres (
  movie_id TEXT NOT NULL REFERENCES movies (id) ON DELETE CASCADE,
  genre TEXT NOT NULL COLLATE NOCASE,
  PRIMARY KEY (movie_id, genre)
);
CREATE INDEX movie_genres_genre ON movie_genres (genre, movie_id);

CREATE TABLE theaters (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT NOT NULL COLLATE NOCASE,
  address TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX theaters_city ON theaters (city);

CREATE TABLE screens (
  id TEXT PRIMARY KEY,
  theater_id TEXT NOT NULL REFERENCES theaters (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  layout TEXT NOT NULL,
  seat_count INTEGER NOT NULL,
  categories TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX screens_theater ON screens (theater_id);

CREATE TABLE shows (
  id TEXT PRIMARY KEY,
  movie_id TEXT NOT NULL REFERENCES movies (id),
  screen_id TEXT NOT NULL REFERENCES screens (id),
  theater_id TEXT NOT NULL REFERENCES theaters (id),
  city TEXT NOT NULL COLLATE NOCASE,
  start_time TEXT NOT NULL,
  end_time TEXT NOT NULL,
  format TEXT NOT NULL DEFAULT '2D',
  language TEXT NOT NULL,
  prices TEXT NOT NULL,
  currency TEXT NOT NULL,
  forbid_single_seat_gaps INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX shows_movie_start ON shows (movie_id, start_time);
CREATE INDEX shows_city_start ON shows (city, start_time);
CREATE INDEX shows_theater_start ON shows (theater_id, start_time);

CREATE TABLE ratings (
  user_id TEXT NOT NULL REFERENCES users (id),
  movie_id TEXT NOT NULL REFERENCES movies (id) ON DELETE CASCADE,
  score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 10),
  created_at TEXT NOT NULL,
  PRIMARY KEY (user_id, movie_id)
);

CREATE TABLE bookings (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  show_id TEXT NOT NULL REFERENCES shows (id),
  hold_id TEXT NOT NULL,
  hold_expires_at TEXT NOT NULL,
  seats TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending_payment', 'confirmed', 'cancelled', 'failed', 'expired')),
  subtotal INTEGER NOT NULL,
  discount INTEGER NOT NULL,
  fees INTEGER NOT NULL,
  total INTEGER NOT NULL,
  currency TEXT NOT NULL,
  promo_code TEXT,
  offer_id TEXT,
  payment_method TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  confirmed_at TEXT,
  cancelled_at TEXT
);
CREATE INDEX bookings_user_created ON bookings (user_id, created_at DESC, id DESC);
CREATE INDEX bookings_status ON bookings (status, hold_expires_at);
CREATE INDEX bookings_show ON bookings (show_id);

CREATE TABLE booking_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  booking_id TEXT NOT NULL REFERENCES bookings (id),
  status TEXT NOT NULL,
  at TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX booking_events_booking ON booking_events (booking_id, id);

CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  booking_id TEXT NOT NULL REFERENCES bookings (id),
  provider TEXT NOT NULL,
  intent_id TEXT NOT NULL UNIQUE,
  method TEXT NOT NULL,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  card_brand TEXT,
  card_last4 TEXT,
  failure_reason TEXT,
  refund_id TEXT,
  refunded_amount INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX payments_booking ON payments (booking_id);

CREATE TABLE offers (
  id TEXT PRIMARY KEY,
  code TEXT NOT NULL UNIQUE COLLATE NOCASE,
  description TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL CHECK (kind IN ('percent', 'flat')),
  value INTEGER NOT NULL,
  max_discount INTEGER,
  min_amount INTEGER NOT NULL DEFAULT 0,
  valid_from TEXT NOT NULL,
  valid_until TEXT NOT NULL,
  total_limit INTEGER,
  per_user_limit INTEGER,
  used_count INTEGER NOT NULL DEFAULT 0,
  scope TEXT NOT NULL DEFAULT '{}',
  is_public INTEGER NOT NULL DEFAULT 1,
  is_active INTEGER NOT NULL DEFAULT 1,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE offer_uses (
  booking_id TEXT PRIMARY KEY REFERENCES bookings (id),
  offer_id TEXT NOT NULL REFERENCES offers (id),
  user_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX offer_uses_offer_user ON offer_uses (offer_id, user_id);

CREATE TABLE tickets (
  booking_id TEXT PRIMARY KEY REFERENCES bookings (id),
  code TEXT NOT NULL,
  kid TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  revoked_at TEXT,
  checked_in_at TEXT
);

CREATE TABLE idempotency_keys (
  user_id TEXT NOT NULL,
  key TEXT NOT NULL,
  route TEXT NOT NULL,
  body_hash TEXT NOT NULL,
  status INTEGER,
  response TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at TEXT NOT NULL,
  relayed_at TEXT
);
CREATE INDEX outbox_pending ON outbox (relayed_at, id);

CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  booking_id TEXT,
  channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
  template TEXT NOT NULL,
  recipient TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
  send_at TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  created_at TEXT NOT NULL,
  sent_at TEXT
);
CREATE INDEX notifications_user ON notifications (user_id, created_at DESC);
CREATE INDEX notifications_booking ON notifications (booking_id);

CREATE TABLE notification_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_id TEXT NOT NULL REFERENCES notifications (id),
  at TEXT NOT NULL,
  ok INTEGER NOT NULL,
  error TEXT
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id);
`,
};
