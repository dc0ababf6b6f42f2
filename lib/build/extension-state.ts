/**
 * The sealer image extension as a build accumulates it (docs/building.md, "The sealer
 * extension"): the image type, the applications (inherited from the base, then defined by
 * APP/CNI/CSI and changed by APPCMDS/APPENV), LAUNCH/CMDS/CMD and the ENV defaults. Pure values:
 * every change returns a new state, so builder branches never share a mutation.
 */
import { BuildError, NotFoundError, UsageError } from '../errors';
import { defaultImageExtension, type ImageExtension, type SealerApplication } from '../sealer';
import { appNameProblem } from '../kubefile';

export interface ExtensionState {
  type: ImageExtension['type'];
  applications: SealerApplication[];
  launchCmds: string[];
  appNames?: string[];
  env: Record<string, string>;
  /** A CMD was given (it excludes LAUNCH). */
  usedCmd: boolean;
}

/** The state a build starts with: the type, and the base's apps (sealer does not inherit LAUNCH, CMDS or the env). */
export function initialExtensionState(type: ImageExtension['type'], base?: ImageExtension): ExtensionState {
  return { type, applications: base ? base.applications.map((a) => ({ ...a })) : [], launchCmds: [], env: {}, usedCmd: false };
}

/** sealer asks only for a non-empty name; it must also be one directory under application/apps/. */
export function checkAppName(name: string, what: string): void {
  const problem = appNameProblem(name);
  if (problem !== undefined) throw new UsageError(`${what}: invalid app name ${JSON.stringify(name)}: it ${problem}`);
}

/** The index of app `name`; a NotFoundError listing the known apps when there is none. */
export function findApp(ext: ExtensionState, name: string, what: string): number {
  const i = ext.applications.findIndex((a) => a.name === name);
  if (i < 0) {
    const known = ext.applications.map((a) => a.name);
    throw new NotFoundError(name, `${what}: app (defined: ${known.length > 0 ? known.join(', ') : 'none'})`);
  }
  return i;
}

/** Define an app; a redefined app keeps its place. */
export function withApp(ext: ExtensionState, app: SealerApplication): ExtensionState {
  const i = ext.applications.findIndex((a) => a.name === app.name);
  const applications = i < 0 ? [...ext.applications, app] : ext.applications.map((a, j) => (j === i ? app : a));
  return { ...ext, applications };
}

/** Change an existing app (`what` names the instruction in the error when it does not exist). */
export function updateApp(ext: ExtensionState, name: string, what: string, update: (app: SealerApplication) => SealerApplication): ExtensionState {
  const i = findApp(ext, name, what);
  return { ...ext, applications: ext.applications.map((a, j) => (j === i ? update(a) : a)) };
}

/**
 * The extension the image carries. An app whose type could not be detected needs APPCMDS: sealer
 * would not know how to launch it, so the build fails.
 */
export function finalExtension(ext: ExtensionState, buildClient: ImageExtension['buildClient']): ImageExtension {
  for (const app of ext.applications) {
    if (app.type === '' && (!app.cmds || app.cmds.length === 0)) {
      throw new BuildError(`app ${app.name}: its type could not be detected from its files (helm, kube or shell); give it APPCMDS`, {
        app: app.name,
      });
    }
  }
  return defaultImageExtension({
    buildClient: { ...buildClient },
    type: ext.type,
    applications: ext.applications,
    launch: {
      ...(ext.launchCmds.length > 0 ? { cmds: ext.launchCmds } : {}),
      ...(ext.appNames && ext.appNames.length > 0 ? { app_names: ext.appNames } : {}),
    },
    env: ext.env,
  });
}
