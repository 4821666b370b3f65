/**
 * The progress line: how far the run is, responses, errors and the current rate, from the recorder.
 */
import { describe, expect, it } from 'vitest';
import { progressLine } from '../../bench/load/progress.js';
import { Recorder } from '../../bench/load/recorder.js';

describe('the progress line', () => {
  it('counts responses, non-2xx and transport errors, and shows the fraction of a request-count run', () => {
    const recorder = new Recorder();
    recorder.start();
    for (let i = 0; i < 30; i++) recorder.response(200, 1);
    recorder.response(409, 1);
    recorder.transportError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const line = progressLine(recorder, {
      seconds: 60,
      requests: 62,
      note: () => '3/300 seats held or sold',
    });
    expect(line).toContain('[============            ]');
    expect(line).toContain('50%');
    expect(line).toContain('31 req');
    expect(line).toContain('2 err/non-2xx');
    expect(line).toContain('3/300 seats held or sold');
    expect(recorder.errorKinds).toEqual({ ECONNRESET: 1 });
  });

  it('names a contract error by its code', () => {
    const recorder = new Recorder();
    recorder.step('hold', 409, 2, '{"error":{"code":"SEATS_UNAVAILABLE","message":"taken","details":{}}}');
    recorder.step('hold', 201, 2, '{"hold":{}}');
    expect(recorder.errorKinds).toEqual({ '409 SEATS_UNAVAILABLE': 1 });
    expect(recorder.steps.get('hold')!.statuses).toEqual({ 201: 1, 409: 1 });
  });
});
