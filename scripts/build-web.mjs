#!/usr/bin/env node
// Builds the browser files into dist/web/ (served with --web dist/web): type-checks web/ (tsc -p web),
// bundles web/websock.ts as an ES module (websock.mjs) and a classic script defining the global Websock
// (websock.js), bundles web/wstelnet.ts with xterm.js (wstelnet.js) when it exists and the session player
// web/player/player.ts with noVNC and xterm.js (player.js), and copies the pages,
// their CSS and xterm.css. Runs after `tsc -p .`, whose output for web/*.ts it overwrites in dist/web/.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'web');
const out = join(root, 'dist', 'web');
// Browsers without private fields or top-level await are long gone; ES2020 keeps the output plain.
const target = 'es2020';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const check = spawnSync(process.execPath, [tsc, '-p', src], { stdio: 'inherit' });
if (check.status !== 0) {
  console.error('build-web: tsc -p web failed');
  process.exit(1);
}

mkdirSync(out, { recursive: true });
const common = { bundle: true, target, sourcemap: true, logLevel: 'warning' };
try {
  await esbuild.build({ ...common, entryPoints: [join(src, 'websock.ts')], format: 'esm', outfile: join(out, 'websock.mjs') });
  // The classic script's global is the class itself, as the old include/websock.js defined it.
  await esbuild.build({
    ...common,
    stdin: {
      contents: "import Websock from './websock.ts';\nglobalThis.Websock = Websock;\n",
      resolveDir: src,
      sourcefile: 'websock-global.ts',
      loader: 'ts',
    },
    format: 'iife',
    outfile: join(out, 'websock.js'),
  });
  if (existsSync(join(src, 'wstelnet.ts'))) {
    await esbuild.build({ ...common, entryPoints: [join(src, 'wstelnet.ts')], format: 'iife', outfile: join(out, 'wstelnet.js') });
  }
  // The session player, with noVNC's client and xterm.js in one script (player.html beside it): an ES
  // module for ES2022, because noVNC's modules use top-level await.
  await esbuild.build({
    ...common,
    entryPoints: [join(src, 'player', 'player.ts')],
    format: 'esm',
    target: 'es2022',
    outfile: join(out, 'player.js'),
  });
} catch (error) {
  // esbuild has printed its diagnostics already; this names the step (and shows any other failure).
  console.error(`build-web: esbuild failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}

for (const dir of [src, join(src, 'player')]) {
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.html') || name.endsWith('.css')) copyFileSync(join(dir, name), join(out, name));
  }
}
const xtermCss = join(root, 'node_modules', '@xterm', 'xterm', 'css', 'xterm.css');
if (existsSync(xtermCss)) copyFileSync(xtermCss, join(out, 'xterm.css'));
