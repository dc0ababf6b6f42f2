/**
 * Reading JSON the way sealer reads it: Go's `encoding/json` decoding into sealer's structs
 * (https://pkg.go.dev/encoding/json#Unmarshal). What sealer accepts, we accept, with the meaning
 * sealer gives it:
 *
 * - no field is required: a missing one, or `null`, leaves Go's zero value (`""`, empty list,
 *   empty map, a struct of zero values);
 * - object keys match struct fields by their JSON name, exactly or else case-insensitively, and a
 *   later key for the same field wins;
 * - keys no field has are ignored;
 * - a value of the wrong JSON type (a number where a string goes, a string where a list goes)
 *   makes `json.Unmarshal` fail, and with it sealer's inspect and run: it is an issue here too,
 *   named by its JSON pointer. Every such issue is collected, not only the first.
 */
import type { SchemaIssue } from '../errors';

/** The Go types sealer's documents are made of. */
export type GoType =
  | { kind: 'string' }
  | { kind: 'bool' }
  | { kind: 'slice'; of: GoType }
  | { kind: 'map'; of: GoType }
  | { kind: 'struct'; fields: Readonly<Record<string, GoType>> };

export const goString: GoType = { kind: 'string' };
export const goBool: GoType = { kind: 'bool' };
export const goSlice = (of: GoType): GoType => ({ kind: 'slice', of });
export const goMap = (of: GoType): GoType => ({ kind: 'map', of });
export const goStruct = (fields: Record<string, GoType>): GoType => ({ kind: 'struct', fields });

/** A decoded value: strings, booleans, arrays (nil slice: `null`), string-keyed objects (nil map: `null`). */
export type GoValue = string | boolean | null | GoValue[] | { [key: string]: GoValue };

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function jsonType(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** The zero value of a Go type. */
export function goZero(type: GoType): GoValue {
  switch (type.kind) {
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'slice':
    case 'map':
      return null;
    case 'struct': {
      const out: { [key: string]: GoValue } = {};
      for (const [name, t] of Object.entries(type.fields)) out[name] = goZero(t);
      return out;
    }
  }
}

/** The struct field a JSON key decodes into: the exact name, else a case-insensitive match. */
function fieldFor(fields: Readonly<Record<string, GoType>>, key: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(fields, key)) return key;
  const folded = key.toLowerCase();
  return Object.keys(fields).find((name) => name.toLowerCase() === folded);
}

const GO_NAMES: Record<GoType['kind'], string> = { string: 'string', bool: 'bool', slice: 'array', map: 'object', struct: 'object' };

/**
 * Decode `value` (parsed JSON) as Go would into `type`. Problems are appended to `issues` (field
 * = JSON pointer under `pointer`); the returned value has the zero value in their place.
 */
export function decodeGo(value: unknown, type: GoType, issues: SchemaIssue[], pointer = ''): GoValue {
  if (value === null || value === undefined) return goZero(type);
  const wrong = (): GoValue => {
    issues.push({ field: pointer, message: `cannot be read as a Go ${GO_NAMES[type.kind]} (it is a JSON ${jsonType(value)}), so sealer cannot read it either` });
    return goZero(type);
  };
  switch (type.kind) {
    case 'string':
      return typeof value === 'string' ? value : wrong();
    case 'bool':
      return typeof value === 'boolean' ? value : wrong();
    case 'slice':
      if (!Array.isArray(value)) return wrong();
      return value.map((item, i) => decodeGo(item, type.of, issues, `${pointer}/${i}`));
    case 'map': {
      if (jsonType(value) !== 'object') return wrong();
      const out: { [key: string]: GoValue } = {};
      for (const [k, v] of Object.entries(value as object)) out[k] = decodeGo(v, type.of, issues, `${pointer}/${escapePointer(k)}`);
      return out;
    }
    case 'struct': {
      if (jsonType(value) !== 'object') return wrong();
      const out = goZero(type) as { [key: string]: GoValue };
      for (const [k, v] of Object.entries(value as object)) {
        const field = fieldFor(type.fields, k);
        // `null` into a struct field leaves what it holds (an earlier key's value, or zero).
        if (field !== undefined && v !== null) out[field] = decodeGo(v, type.fields[field], issues, `${pointer}/${escapePointer(k)}`);
      }
      return out;
    }
  }
}
