/** Checks for encoder options: bad values are the caller's mistake, reported as UsageError. */
import { UsageError } from '../errors';

export function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
