/**
 * The open-files limit read from /proc and the feed bound derived from it.
 */
import { describe, expect, it } from 'vitest';
import {
  globalFeedBound,
  MAX_FEED_SUBSCRIBERS,
  RESERVED_FILE_DESCRIPTORS,
} from '../../src/http/seat-feed.js';
import { parseOpenFilesSoftLimit } from '../../src/process-limits.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
`;

describe('open-files limit', () => {
  it('reads the soft limit, not the hard one', () => {
    expect(parseOpenFilesSoftLimit(LIMITS)).toBe(1024);
  });

  it('knows no limit when it is unlimited or missing', () => {
    expect(parseOpenFilesSoftLimit(LIMITS.replace('1024   ', 'unlimited'))).toBeUndefined();
    expect(parseOpenFilesSoftLimit('Max cpu time unlimited unlimited seconds\n')).toBeUndefined();
  });
});

describe('feed bound', () => {
  it('leaves the reserve below the soft limit', () => {
    expect(globalFeedBound(1024)).toBe(1024 - RESERVED_FILE_DESCRIPTORS);
  });

  it('never passes its own maximum, and keeps at least one feed on a tiny limit', () => {
    expect(globalFeedBound(1_000_000)).toBe(MAX_FEED_SUBSCRIBERS);
    expect(globalFeedBound(undefined)).toBe(MAX_FEED_SUBSCRIBERS);
    expect(globalFeedBound(100)).toBe(1);
  });
});
