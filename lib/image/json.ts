/**
 * Canonical JSON for the documents we write: object keys sorted by UTF-16 code unit (like RFC
 * 8785 for the ASCII keys OCI uses), no whitespace. Sorting every object makes the bytes
 * independent of how a document was assembled, so equal images get equal digests. Documents we
 * read are never re-serialized: their bytes are kept as they came (docs/reference/oci.md#json-bytes).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    // JS puts integer-like keys first whatever the insertion order; JSON.stringify follows that.
    return out;
  }
  return value;
}

export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}
