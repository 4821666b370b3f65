import { describe, expect, it } from 'vitest';
import { isCommonPassword, passwordProblem } from '../../src/domain/password-policy.js';

describe('password policy', () => {
  it('refuses the most common passwords, whatever their case', () => {
    for (const password of ['password', 'Password1', '12345678', 'qwertyuiop', 'iloveyou', 'P@ssw0rd'])
      expect(isCommonPassword(password)).toBe(true);
    expect(passwordProblem('Qwerty123', 'a@b.com')).toMatch(/common/);
  });

  it('refuses the email and its local part', () => {
    expect(passwordProblem('Asha.Rao@Example.com', 'asha.rao@example.com')).toMatch(/email/);
    expect(passwordProblem('asha.rao', 'asha.rao@example.com')).toMatch(/email/);
  });

  it('accepts an ordinary password', () => {
    expect(passwordProblem('tandoori-sunset-42', 'asha.rao@example.com')).toBeUndefined();
  });
});
