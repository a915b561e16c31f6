import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { StartupError } from '../src/errors.js';
import { isModulePath, loadPluginModule, type PluginKind } from '../src/plugin-module.js';

const KIND: PluginKind = { name: 'test plugin', method: 'run', parameters: 'input' };
let scratch: string;

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-plugin-module-'));
});
after(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Writes a module into the scratch directory and returns its path. */
function moduleFile(name: string, text: string): string {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, text);
  return file;
}

test('a path or a .js/.mjs/.cjs name is a module; a bare name is a built-in', () => {
  for (const name of ['./mine.js', '/opt/plugins/mine', 'mine.mjs', 'mine.cjs', 'dir/mine']) assert.equal(isModulePath(name), true, name);
  for (const name of ['TokenFile', 'websockify.token_plugins.TokenFile', 'BasicHTTPAuth', 'mine.ts'])
    assert.equal(isModulePath(name), false, name);
});

test("the module's factory is called with the source and context; its plugin is returned", async () => {
  const file = moduleFile('good.mjs', 'export default (source, context) => ({ run: (input) => [source, context.tag, input] });\n');
  const plugin = await loadPluginModule<{ run(input: string): unknown }>(file, KIND, 'src', { tag: 'ctx' });
  assert.deepEqual(plugin.run('in'), ['src', 'ctx', 'in']);
  // A relative path is taken from the working directory; an async factory is awaited.
  const relative = path.relative(process.cwd(), moduleFile('async.mjs', 'export default async () => ({ run: () => 1 });\n'));
  assert.equal((await loadPluginModule<{ run(): number }>(relative, KIND, undefined, {})).run(), 1);
});

test('every failure is a StartupError naming the kind and the module', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['syntax.mjs', 'export default (;\n', /^cannot load test plugin module .*syntax\.mjs: /],
    ['no-default.mjs', 'export const x = 1;\n', /^test plugin module .*no-default\.mjs: its default export must be a function/],
    ['throws.mjs', "export default () => { throw new Error('bad source'); };\n", /^test plugin module .*throws\.mjs: bad source$/],
    ['throws-text.mjs', "export default () => { throw 'plain text'; };\n", /: plain text$/],
    ['no-method.mjs', 'export default () => ({ walk() {} });\n', /: its factory must return an object with the run\(input\) method$/],
    ['nothing.mjs', 'export default () => undefined;\n', /run\(input\) method$/],
  ];
  for (const [name, text, message] of cases) {
    await assert.rejects(loadPluginModule(moduleFile(name, text), KIND, undefined, {}), (err) => {
      assert.ok(err instanceof StartupError, name);
      assert.match(err.message, message);
      return true;
    });
  }
  await assert.rejects(
    loadPluginModule(path.join(scratch, 'absent.mjs'), KIND, undefined, {}),
    /: cannot load test plugin module .*absent\.mjs/,
  );
});
