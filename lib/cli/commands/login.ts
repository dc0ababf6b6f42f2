/** `cloudrootfs login HOST -u USER (-p PASS | --password-stdin)`: check credentials, then store them. */
import { UsageError } from '../../errors';
import { login } from '../../registry/login';
import type { Command } from '../command';
import { print } from '../command';

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

export const loginCommand: Command = {
  name: 'login',
  usage: 'login HOST[:PORT] -u USER (-p PASSWORD | --password-stdin) [--authfile FILE] [--insecure]',
  options: [
    { name: 'username', alias: 'u', type: 'string', placeholder: 'USER', description: 'user name' },
    { name: 'password', alias: 'p', type: 'string', placeholder: 'PASSWORD', description: 'password (visible to other users of this machine: prefer --password-stdin)' },
    { name: 'password-stdin', type: 'boolean', description: 'read the password from standard input' },
    { name: 'authfile', type: 'string', placeholder: 'FILE', description: 'auth file to write (default: $REGISTRY_AUTH_FILE, else ~/.docker/config.json)' },
    { name: 'insecure', type: 'boolean', description: 'plain http (loopback registries use http anyway)' },
  ],
  positionals: [1, 1],
  async run(ctx) {
    const [registry] = ctx.args.positionals;
    const username = ctx.args.options.username;
    if (typeof username !== 'string' || username === '') throw new UsageError('login needs -u USER');
    const given = ctx.args.options.password;
    const fromStdin = !!ctx.args.options['password-stdin'];
    if (typeof given === 'string' && fromStdin) throw new UsageError('-p and --password-stdin exclude each other');
    if (typeof given !== 'string' && !fromStdin) throw new UsageError('login needs -p PASSWORD or --password-stdin');
    const password = typeof given === 'string' ? given : await readStdin();
    const authFile = ctx.args.options.authfile;
    const result = await login({
      registry: registry.replace(/^docker:\/\//, '').replace(/\/+$/, ''),
      username,
      password,
      ...(typeof authFile === 'string' ? { authFile } : {}),
      ...(ctx.args.options.insecure ? { insecure: true } : {}),
      fs: ctx.fs,
      env: ctx.env,
    });
    print(ctx, `login succeeded (${result.auth === 'none' ? 'the registry checks no credentials' : `${result.auth} auth`}); credentials saved in ${result.authFile}`);
  },
};
