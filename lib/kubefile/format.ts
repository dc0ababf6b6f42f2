/**
 * An instruction back to one line of canonical Kubefile text: upper-case keyword, flags as
 * `--name=value`, words as written (so quoting survives), JSON arrays as `["a", "b"]`. Used for
 * image history (`created_by`). Reading the result with the same escape character gives back an
 * equivalent instruction.
 */
import type { Instruction, KeyValue } from './types';

function jsonArray(values: readonly string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;
}

function flags(entries: ReadonlyArray<readonly [string, string | undefined]>): string {
  return entries
    .filter((entry): entry is readonly [string, string] => entry[1] !== undefined)
    .map(([name, value]) => ` --${name}=${value}`)
    .join('');
}

function pairs(list: readonly KeyValue[]): string {
  return list.map((p) => `${p.key}=${p.value}`).join(' ');
}

export function formatInstruction(i: Instruction): string {
  switch (i.kind) {
    case 'FROM':
      return `FROM${flags([['platform', i.platform]])} ${i.image}${i.stage !== undefined ? ` AS ${i.stage}` : ''}`;
    case 'COPY':
    case 'ADD': {
      const words = [...i.sources, i.dest];
      const head = `${i.kind}${flags([
        ['from', i.from],
        ['chown', i.chown],
        ['chmod', i.chmod],
        ['checksum', i.checksum],
      ])}`;
      return `${head} ${i.form === 'json' ? jsonArray(words) : words.join(' ')}`;
    }
    case 'ARG':
      return `ARG ${i.args.map((a) => (a.default === undefined ? a.name : `${a.name}=${a.default}`)).join(' ')}`;
    case 'ENV':
    case 'LABEL':
      return i.form === 'legacy' ? `${i.kind} ${i.pairs[0].key} ${i.pairs[0].value}` : `${i.kind} ${pairs(i.pairs)}`;
    case 'MAINTAINER':
      return `MAINTAINER ${i.text}`;
    case 'RUN': {
      const head = `RUN${flags([
        ...i.mounts.map((m) => ['mount', m] as const),
        ['network', i.network],
        ['security', i.security],
      ])}`;
      return `${head} ${i.form === 'json' ? jsonArray(i.args) : i.command}`;
    }
    case 'CMD':
      return `CMD ${i.form === 'json' ? jsonArray(i.commands) : i.text}`;
    case 'CMDS':
      return `CMDS ${jsonArray(i.commands)}`;
    case 'LAUNCH':
      return `LAUNCH ${i.form === 'json' ? jsonArray(i.apps) : i.apps.join(' ')}`;
    case 'APP':
    case 'CNI':
    case 'CSI': {
      const words = [i.name, ...i.sources.map((s) => s.text)];
      return `${i.kind} ${i.form === 'json' ? jsonArray(words) : words.join(' ')}`;
    }
    case 'APPCMDS':
      return `APPCMDS ${i.name} ${jsonArray(i.commands)}`;
    case 'APPENV': {
      const words = [i.name, ...i.pairs.map((p) => `${p.key}=${p.value}`)];
      return `APPENV ${i.form === 'json' ? jsonArray(words) : words.join(' ')}`;
    }
    case 'KUBEVERSION':
      return `KUBEVERSION ${i.text}`;
  }
}
