/**
 * The CLI as a child process, for tests that kill it. jest's TypeScript transformer does not reach
 * a child, so the library is compiled once per run into a private directory: each `lib/` file is
 * transpiled on its own (`isolatedModules` makes that exact; types were checked by tsc already),
 * JSON assets are copied, and the child resolves packages from this checkout's node_modules.
 * A private directory, not `dist/`: other engineers' builds and edits in progress never race it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

/** Transpile `lib/` into `outDir/lib`; returns the CLI's path. Takes ~3 s on two cores. */
export function compileCli(outDir: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const compilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    esModuleInterop: true,
    resolveJsonModule: true,
  };
  const walk = (dir: string): void => {
    for (const name of nodeFs.readdirSync(dir)) {
      const path = join(dir, name);
      const out = join(outDir, relative(ROOT, path));
      if (nodeFs.statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        const { outputText } = ts.transpileModule(nodeFs.readFileSync(path, 'utf8'), { compilerOptions, fileName: path });
        nodeFs.mkdirSync(dirname(out), { recursive: true });
        nodeFs.writeFileSync(out.replace(/\.ts$/, '.js'), outputText);
      } else if (name.endsWith('.json')) {
        nodeFs.mkdirSync(dirname(out), { recursive: true });
        nodeFs.copyFileSync(path, out);
      }
    }
  };
  walk(join(ROOT, 'lib'));
  nodeFs.copyFileSync(join(ROOT, 'package.json'), join(outDir, 'package.json'));
  return join(outDir, 'lib', 'cli', 'main.js');
}

export interface ChildRun {
  child: ChildProcess;
  /** Exit code (null when killed), signal, and what it printed. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>;
}

/** Start `cloudrootfs argv…` from the compiled CLI. */
export function runChild(cliPath: string, argv: string[], env: NodeJS.ProcessEnv = {}): ChildRun {
  const started = Date.now();
  const child = spawn(process.execPath, [cliPath, ...argv], {
    env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>((resolveDone, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolveDone({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
  return { child, done };
}

/** Run to the end; throws with its output when it fails. */
export async function runChildOk(cliPath: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; ms: number }> {
  const r = await runChild(cliPath, argv, env).done;
  if (r.code !== 0) throw new Error(`cloudrootfs ${argv.join(' ')} exited ${r.code ?? r.signal}:\n${r.stderr}${r.stdout}`);
  return r;
}

/** Start it and SIGKILL it after `delayMs` (if it is still running). Resolves to whether the kill landed. */
export async function runAndKill(cliPath: string, argv: string[], delayMs: number, env?: NodeJS.ProcessEnv): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  const run = runChild(cliPath, argv, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), delayMs);
  const r = await run.done;
  clearTimeout(timer);
  return { killed: r.signal === 'SIGKILL', code: r.code, stderr: r.stderr };
}
