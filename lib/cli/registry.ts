/**
 * The commands the CLI knows, in help order. Each is loaded only when invoked, so a command pays
 * only for the modules it uses. Add a command: write commands/<name>.ts, list it here.
 */
import type { Command } from './command';

export interface CommandEntry {
  name: string;
  summary: string;
  load(): Command;
}

/* eslint-disable @typescript-eslint/no-require-imports */
export const COMMANDS: CommandEntry[] = [
  { name: 'build', summary: 'build a CloudImage from a Kubefile and a context directory', load: () => require('./commands/build').buildCommand },
  { name: 'lint', summary: 'check a CloudRootfs directory or image: sealer scripts, Kubernetes version, Metadata, Clusterfile, templates', load: () => require('./commands/lint').lintCommand },
  { name: 'images', summary: 'list the images in the local store', load: () => require('./commands/images').imagesCommand },
  { name: 'inspect', summary: 'print an image as JSON in the shape sealer inspect prints (works without sealer metadata too)', load: () => require('./commands/inspect').inspectCommand },
  { name: 'ls', summary: 'list the merged rootfs of an image: type+mode, uid:gid, size, path, link target', load: () => require('./commands/ls').lsCommand },
  { name: 'diff', summary: 'compare two images\' merged root filesystems: A(dded), D(eleted), C(hanged) paths with sizes', load: () => require('./commands/diff').diffCommand },
  { name: 'export', summary: 'write the merged rootfs of an image to a new directory', load: () => require('./commands/export').exportCommand },
  { name: 'save', summary: 'write images to an archive file (oci-archive by default, or docker-archive)', load: () => require('./commands/save').saveCommand },
  { name: 'load', summary: 'load the images of an archive (oci-archive, docker-archive, plain or compressed) into the store', load: () => require('./commands/load').loadCommand },
  { name: 'tag', summary: 'name a stored image (SOURCE may also be oci:, oci-archive: or docker-archive:, which imports it)', load: () => require('./commands/tag').tagCommand },
  { name: 'rmi', summary: 'remove images from the store by name, digest or ID (blobs nothing else uses are deleted)', load: () => require('./commands/rmi').rmiCommand },
  { name: 'push', summary: 'push an image (or index) to a registry: docker://HOST/REPO[:TAG]', load: () => require('./commands/push').pushCommand },
  { name: 'pull', summary: 'pull an image from a registry into the store (this machine\'s platform, or --platform, or --all-platforms)', load: () => require('./commands/pull').pullCommand },
  { name: 'login', summary: 'log in to a registry: check the credentials, then save them in the auth file', load: () => require('./commands/login').loginCommand },
  { name: 'logout', summary: 'log out of a registry: remove its credentials from the auth file', load: () => require('./commands/logout').logoutCommand },
];
