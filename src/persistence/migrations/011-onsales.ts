import type { Migration } from './index.js';

/**
 * The on-sale waiting room (issue 17). An on-sale keeps its shuffle's seed, and each row whether the
 * shuffle covered it (`shuffled`, set by one UPDATE at opening, so exactly the rows committed by then),
 * not a position: the order is replayed from the seed and the rows, so an audit (or a restart)
 * rebuilds exactly the order buyers saw. `seq` is the arrival order across the whole table (AUTOINCREMENT: never reused). Admissions
 * are a prefix of the order; `admitted_at` and `ended_at` are per buyer because a token's lifetime is.
 */
export const m011: Migration = {
  id: 11,
  name: 'onsales',
  sql: `
CREATE TABLE onsales (
  id TEXT PRIMARY KEY,
  show_ids TEXT NOT NULL,
  opens_at TEXT NOT NULL,
  admit_per_minute INTEGER,
  state TEXT NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'open', 'closed')),
  shuffle_seed TEXT,
  shuffled_through_seq INTEGER,
  opened_at TEXT,
  closed_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE onsale_queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  onsale_id TEXT NOT NULL REFERENCES onsales (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL,
  joined_at TEXT NOT NULL,
  shuffled INTEGER NOT NULL DEFAULT 0,
  admitted_at TEXT,
  admission_expires_at TEXT,
  ended_at TEXT
);
CREATE UNIQUE INDEX onsale_queue_user ON onsale_queue (onsale_id, user_id);
CREATE INDEX onsale_queue_order ON onsale_queue (onsale_id, seq);
`,
};
