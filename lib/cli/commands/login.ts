/** `cloudrootfs login HOST -u USER (-p PASS | --password-stdin)`: check credentials, then store them. */
import { UsageError } from '../../errors';
import { login } from '../../registry/login';
import type { Command } from '../command';
import { print } from '../command';
import { CERT_DIR_OPTION, CONNECT_TIMEOUT_OPTION, INSECURE_OPTION, REGISTRIES_CONF_OPTION, STALL_TIMEOUT_OPTION, TLS_VERIFY_OPTION, registryAccess } from '../registry-options';

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

export const loginCommand: Command = {
  name: 'login',
  usage: 'login HOST[:PORT] -u USER (-p PASSWORD | --password-stdin) [--authfile FILE] [--tls-verify=false] [--cert-dir DIR]',
  options: [
    { name: 'username', alias: 'u', type: 'string', placeholder: 'USER', description: 'user name' },
    { name: 'password', alias: 'p', type: 'string', placeholder: 'PASSWORD', description: 'password (visible to other users of this machine: prefer --password-stdin)' },
    { name: 'password-stdin', type: 'boolean', description: 'read the password from standard input' },
    { name: 'authfile', type: 'string', placeholder: 'FILE', description: 'auth file to write, or whose credential helper stores the credentials (default: $REGISTRY_AUTH_FILE, else ~/.docker/config.json)' },
    TLS_VERIFY_OPTION,
    CERT_DIR_OPTION,
    REGISTRIES_CONF_OPTION,
    INSECURE_OPTION,
    CONNECT_TIMEOUT_OPTION,
    STALL_TIMEOUT_OPTION,
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
    const { authFile: _readOnly, credentials: _none, ...reach } = registryAccess(ctx);
    void _readOnly;
    void _none;
    const authFile = ctx.args.options.authfile;
    const result = await login({
      ...reach,
      registry: registry.replace(/^docker:\/\//, '').replace(/\/+$/, ''),
      username,
      password,
      ...(typeof authFile === 'string' ? { authFile } : {}),
      fs: ctx.fs,
    });
    const where = result.helper ? `the credential helper docker-credential-${result.helper} (named in ${result.authFile})` : result.authFile;
    print(ctx, `login succeeded (${result.auth === 'none' ? 'the registry checks no credentials' : `${result.auth} auth`}); credentials saved in ${where}`);
  },
};
