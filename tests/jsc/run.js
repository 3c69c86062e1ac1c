#!/usr/bin/env node
'use strict';
// Runs a script in JavaScriptCore (the `jsc` shell of libjavascriptcoregtk-4.0-bin) with
// pkg/miniprogram loaded as a phone loads it: see prelude.js for the realm.
//
//   node tests/jsc/run.js [--jit] [--module NAME=FILE]... SCRIPT [-- ARGS...]
//
// Without --jit, jsc runs with --useJIT=false (JS and wasm interpreted, as WeChat on iOS).
// The script is bundled with the prelude and the package's CommonJS files (JSC.require
// ('/index.js'), '/client.js', '/markdown.js') and the named test libraries
// ('eventsource-parser', 'text-encoding'), then run. It passes when it ends with JSC.finish()
// and no JSC.fail(). Also a module: bundle(), runJsc() for the benchmarks.
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');
// CHUNKWISE_PKG: another build's pkg/miniprogram (A/B runs of two builds in the same minutes).
const PKG = process.env.CHUNKWISE_PKG ? path.resolve(process.env.CHUNKWISE_PKG) : path.join(ROOT, 'pkg', 'miniprogram');
const OUT = path.join(ROOT, 'target', 'jsc');
const NODE_MODULES = path.join(ROOT, 'tests', 'js', 'node_modules');

function jscPath() {
  for (const p of [process.env.JSC, '/usr/bin/jsc', '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.0/jsc']) {
    if (p && fs.existsSync(p)) return p;
  }
  throw new Error('jsc not found: install libjavascriptcoregtk-4.0-bin (./build.sh does)');
}

function define(name, source) {
  return `JSC.define(${JSON.stringify(name)}, function (module, exports, require) {\n${source}\n});\n`;
}

/** The package modules see no WebAssembly, TextDecoder, TextEncoder or fetch, even by name. */
function definePackage(name, source) {
  return define(name, `return (function (WebAssembly, TextDecoder, TextEncoder, fetch) {\n${source}\n})();`);
}

/** Every file below `dir`, relative to the repository (the shell cannot list a directory). */
function listFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(path.relative(ROOT, p));
  }
  return out.sort();
}

/** Writes the bundle for `script`, with `modules` ({name: file}: more CommonJS files for
 * JSC.require); returns its path. */
function bundle(script, modules = {}) {
  fs.mkdirSync(path.join(OUT, 'pkg'), { recursive: true });
  if (!fs.existsSync(path.join(PKG, 'index.js'))) throw new Error('pkg/miniprogram is missing: run ./build.sh first');
  for (const f of fs.readdirSync(PKG)) {
    if (f.endsWith('.wasm.br')) {
      fs.writeFileSync(path.join(OUT, 'pkg', f.slice(0, -3)), zlib.brotliDecompressSync(fs.readFileSync(path.join(PKG, f))));
    }
  }
  const config = { root: ROOT, wasmDir: path.join(OUT, 'pkg'), fixtures: listFiles(path.join(ROOT, 'tests', 'fixtures')) };
  let out = fs.readFileSync(path.join(__dirname, 'prelude.js'), 'utf8').replace('__JSC_CONFIG__', JSON.stringify(config));
  for (const f of fs.readdirSync(PKG)) {
    if (f.endsWith('.js')) out += definePackage('/' + f, fs.readFileSync(path.join(PKG, f), 'utf8'));
  }
  const esp = path.join(NODE_MODULES, 'eventsource-parser', 'dist', 'index.cjs');
  if (fs.existsSync(esp)) out += define('eventsource-parser', fs.readFileSync(esp, 'utf8'));
  const te = path.join(NODE_MODULES, 'text-encoding', 'lib', 'encoding.js');
  if (fs.existsSync(te)) {
    // Its UTF-8 decoder only; kept off the global object (the realm has no TextDecoder).
    out += define('text-encoding', `var holder = {};\n(function (module) {\n${fs.readFileSync(te, 'utf8')}\n}).call(holder, undefined);\nmodule.exports = { TextDecoder: holder.TextDecoder };`);
  }
  for (const [name, file] of Object.entries(modules)) out += define(name, fs.readFileSync(file, 'utf8'));
  out += `\n// ---- ${path.relative(ROOT, script)}\n` + fs.readFileSync(script, 'utf8');
  const file = path.join(OUT, path.basename(script, '.js') + '.bundle.js');
  fs.writeFileSync(file, out);
  return file;
}

/** Runs a bundle in jsc; returns {status, stdout, stderr}. */
function runJsc(file, { jit = false, args = [], timeoutMs = 900000 } = {}) {
  const flags = jit ? [] : ['--useJIT=false'];
  const r = spawnSync(jscPath(), [...flags, file, '--', ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { status: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

function passed(stdout) {
  return /^jsc: ok/m.test(stdout);
}

module.exports = { bundle, runJsc, passed, ROOT };

if (require.main === module) {
  const argv = process.argv.slice(2);
  const jit = argv[0] === '--jit';
  if (jit) argv.shift();
  const modules = {};
  while (argv[0] === '--module') {
    const [name, file] = argv[1].split('=');
    modules[name] = path.resolve(file);
    argv.splice(0, 2);
  }
  const dash = argv.indexOf('--');
  const script = argv[0];
  const args = dash >= 0 ? argv.slice(dash + 1) : [];
  if (!script) {
    console.error('usage: node tests/jsc/run.js [--jit] [--module NAME=FILE]... SCRIPT [-- ARGS...]');
    process.exit(2);
  }
  const started = Date.now();
  const r = runJsc(bundle(path.resolve(script), modules), { jit, args });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.error) console.error(String(r.error));
  const ok = r.status === 0 && passed(r.stdout);
  console.error(`${path.relative(ROOT, path.resolve(script))} in jsc ${jit ? 'with' : 'without'} JIT: ${ok ? 'ok' : 'FAILED'} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exit(ok ? 0 : 1);
}
