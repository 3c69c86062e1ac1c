'use strict';
// Types, from `npm pack` of pkg/: `tsc --strict` (no skipLibCheck, so chunkwise's own .d.ts
// are checked too) over the framework projects' code (the README's examples) and over
// types/*.ts (wx.request, uni.request, Taro.request and fetch handed to streamChat and read
// into a StreamDecoder), with each platform's official typings, with and without the DOM in
// `lib` (WeChat projects compile without it); and are-the-types-wrong over the tarball.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');
const { TOOLS, scratch, packTarball, installPackage } = require('./helpers');

const TSC = path.join(TOOLS, 'typescript', 'bin', 'tsc');
const ATTW = path.join(TOOLS, '@arethetypeswrong', 'cli', 'dist', 'index.js');
const HERE = __dirname;
const LIBS = { 'no DOM': ['ES2020'], DOM: ['ES2020', 'DOM', 'DOM.Iterable'] };

test.before(() => {
  for (const dir of ['native', 'types', 'taro', 'uniapp', 'web']) installPackage(path.join(HERE, dir));
});

/** The <script setup lang="ts"> of a Vue single-file component, as a module next to it. */
function vueScript(file) {
  const m = /<script setup lang="ts">\n([\s\S]*?)<\/script>/.exec(fs.readFileSync(file, 'utf8'));
  assert.ok(m, `${file} has no <script setup lang="ts">`);
  const out = path.join(path.dirname(file), '.script-setup.ts');
  fs.writeFileSync(out, m[1]);
  process.on('exit', () => fs.rmSync(out, { force: true }));
  return out;
}

/**
 * tsc's diagnostics, less those inside other packages' own declarations (Taro's do not pass
 * --strict without skipLibCheck by themselves; that is theirs, not the user's code or ours).
 * chunkwise's declarations and the checked files count.
 */
function ownDiagnostics(output) {
  const diags = [];
  for (const line of output.split('\n')) {
    if (/^\S.*\(\d+,\d+\): error TS\d+/.test(line) || /^error TS\d+/.test(line)) diags.push(line);
    else if (diags.length > 0 && line.trim() !== '') diags[diags.length - 1] += '\n' + line;
  }
  return diags.filter((d) => !/node_modules[\\/]/.test(d.split('(')[0]) || /node_modules[\\/]chunkwise[\\/]/.test(d.split('(')[0]));
}

async function tsc(name, files, options) {
  const dir = scratch(`tsc-${name.replace(/\W+/g, '-')}`);
  const config = {
    compilerOptions: Object.assign({ strict: true, noEmit: true, target: 'ES2020', skipLibCheck: false, allowJs: true, checkJs: true, esModuleInterop: true, pretty: false }, options),
    files,
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config, null, 2));
  let output = '';
  try {
    await promisify(execFile)(process.execPath, [TSC, '-p', dir], { encoding: 'utf8', timeout: 120000 });
  } catch (e) {
    output = `${e.stdout}${e.stderr}`;
    if (!e.stdout) throw e;
  }
  const diags = ownDiagnostics(output);
  assert.deepEqual(diags, [], `tsc --strict (${name}) reports:\n${diags.join('\n')}`);
}

const RUNS = [
  {
    name: 'wx.request with miniprogram-api-typings (native page, CommonJS)',
    files: () => [path.join(HERE, 'types', 'wx.ts'), path.join(HERE, 'native', 'pages', 'index', 'index.js'), path.join(HERE, 'native', 'app.js')],
    options: { module: 'commonjs', moduleResolution: 'node10', typeRoots: [TOOLS], types: ['miniprogram-api-typings'] },
  },
  {
    name: 'uni.request with @dcloudio/types (uni-app page)',
    files: () => [path.join(HERE, 'types', 'uni.ts'), vueScript(path.join(HERE, 'uniapp', 'src', 'pages', 'index', 'index.vue'))],
    options: { module: 'esnext', moduleResolution: 'bundler', typeRoots: [path.join(HERE, 'uniapp', 'node_modules')], types: ['@dcloudio/types'] },
  },
  {
    name: "Taro.request with Taro's types (Taro page)",
    files: () => [path.join(HERE, 'types', 'taro.ts'), path.join(HERE, 'taro', 'src', 'pages', 'index', 'index.tsx')],
    options: { module: 'esnext', moduleResolution: 'bundler', jsx: 'react-jsx', typeRoots: [path.join(HERE, 'taro', 'node_modules', '@types')], types: [], paths: { '@tarojs/taro': [path.join(HERE, 'taro', 'node_modules', '@tarojs', 'taro')] } },
  },
  {
    name: "fetch with Node's types (Node 18+)",
    files: () => [path.join(HERE, 'types', 'fetch.ts')],
    options: { module: 'node16', moduleResolution: 'node16', typeRoots: [path.join(TOOLS, '@types')], types: ['node'] },
  },
];

for (const run of RUNS) {
  for (const [libName, lib] of Object.entries(LIBS)) {
    test(`tsc --strict, lib ${libName}: ${run.name}`, async () => {
      await tsc(`${run.name} ${libName}`, run.files(), Object.assign({ lib }, run.options));
    });
  }
}

test('tsc --strict, lib DOM: fetch in a browser page (the webpack and Vite project)', async () => {
  await tsc('browser', [path.join(HERE, 'types', 'fetch.ts'), path.join(HERE, 'web', 'src', 'main.js')], { lib: LIBS.DOM, module: 'esnext', moduleResolution: 'bundler', types: [] });
});

test('are-the-types-wrong: no problem in any entry point, for any resolution', async () => {
  // The stylesheets are entry points for bundlers' CSS pipelines, not modules with types.
  const args = [ATTW, packTarball(), '--format', 'json', '--exclude-entrypoints', './chunkwise-markdown.wxss', './chunkwise-markdown.css'];
  let stdout;
  try {
    ({ stdout } = await promisify(execFile)(process.execPath, args, { encoding: 'utf8', timeout: 120000 }));
  } catch (e) {
    stdout = e.stdout;
  }
  const report = JSON.parse(stdout);
  const problems = report.analysis.problems || [];
  assert.deepEqual(problems, [], JSON.stringify(problems, null, 2));
  const entries = Object.keys(report.analysis.entrypoints).sort();
  assert.deepEqual(entries, ['.', './markdown', './miniprogram', './miniprogram/markdown', './package.json', './taro', './vite']);
});
