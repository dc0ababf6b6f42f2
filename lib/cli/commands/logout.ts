/** `cloudrootfs logout HOST`: remove the registry's credentials from the auth file. */
import { logout } from '../../registry/login';
import type { Command } from '../command';
import { print } from '../command';

export const logoutCommand: Command = {
  name: 'logout',
  usage: 'logout HOST[:PORT] [--authfile FILE]',
  options: [{ name: 'authfile', type: 'string', placeholder: 'FILE', description: 'auth file to edit (default: $REGISTRY_AUTH_FILE, else ~/.docker/config.json)' }],
  positionals: [1, 1],
  async run(ctx) {
    const [registry] = ctx.args.positionals;
    const authFile = ctx.args.options.authfile;
    const result = await logout({
      registry: registry.replace(/^docker:\/\//, '').replace(/\/+$/, ''),
      ...(typeof authFile === 'string' ? { authFile } : {}),
      fs: ctx.fs,
      env: ctx.env,
    });
    print(ctx, result.removed ? `removed the credentials for ${registry} from ${result.authFile}` : `no credentials for ${registry} in ${result.authFile}`);
  },
};
