#!/usr/bin/env node
// Lays out what each toolchain resolves in the assembled package: the export conditions'
// files that are not module code (ESM wrappers and types for Node, the themes, the build
// plugins for Taro and uni-app). Runs after make-packages.js.
// usage: node tools/package-layout.js <pkg-dir>
//
// Which file each toolchain gets is package.json `exports` (js/package.json):
//   miniprogram  the mini-program build (the condition chunkwise/taro and chunkwise/vite add;
//                DevTools' "构建 npm" reads the `miniprogram` field instead)
//   node         Node: CommonJS, with an ESM wrapper for `import` (one instance either way)
//   browser, import, default   the browser build (ES module, fetch + WebAssembly)
// Every target has its own types: the .d.ts beside a file is read in that file's module
// format (web/ is "type": "module", node/ and miniprogram/ CommonJS), .d.mts for the wrapper.
'use strict';
const fs = require('fs');
const path = require('path');

const [pkgDir] = process.argv.slice(2);
const root = path.join(__dirname, '..');
const read = (rel) => fs.readFileSync(path.join(root, rel), 'utf8');
function write(rel, text) {
  const file = path.join(pkgDir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

// ---- Node ESM: `import` gets the same CommonJS instance as `require`, with named exports
// that no lexer has to guess (streamChat and fetchRequest are not literal properties).
const nodeApi = {
  index: ['init', 'StreamDecoder', 'FORMATS', 'streamChat', 'fetchRequest'],
  markdown: ['init', 'MarkdownRenderer'],
};
for (const [name, names] of Object.entries(nodeApi)) {
  const cjs = require(path.resolve(pkgDir, 'node', `${name}.js`));
  const have = Object.keys(cjs).sort().join(',');
  if (have !== [...names].sort().join(',')) throw new Error(`package-layout: node/${name}.js exports ${have}, expected ${names.join(',')}`);
  write(`node/${name}.mjs`, `import api from './${name}.js';\nexport const { ${names.join(', ')} } = api;\n`);
}
// The .d.mts twins of the declarations, their relative imports pointing at .d.mts too.
for (const name of ['index', 'client', 'markdown']) {
  const dts = read(`js/${name}.d.ts`).replace(/from '\.\/(index|client)\.js'/g, "from './$1.mjs'");
  write(`node/${name}.d.mts`, dts);
}

// ---- Themes: the Markdown classes for <rich-text> (wxss) and for pages (css), one source.
const css = read('js/chunkwise-markdown.css');
const body = css.replace(/^\/\*[\s\S]*?\*\/\n/, '');
write(
  'miniprogram/chunkwise-markdown.wxss',
  `/* chunkwise-markdown theme for <rich-text> nodes from chunkwise/markdown: light and dark.
 * rich-text resolves classes against the wxss of the page or component that owns it: import
 * this file there (or in app.wxss for pages). Dark mode follows the system (app.json
 * "darkMode": true) via prefers-color-scheme. */
${body}`
);

// ---- Build plugins for toolchains that bundle npm packages themselves. At the package root:
// Taro finds plugins with the `resolve` package, which reads no `exports`.
write('plugins/wasm-files.js', read('js/plugins/wasm-files.js'));
for (const f of ['taro.js', 'taro.d.ts', 'vite.js', 'vite.d.ts']) write(f, read(`js/plugins/${f}`));

// ---- Every path package.json names must exist.
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const targets = [];
(function walk(v) {
  if (typeof v === 'string') targets.push(v);
  else if (v && typeof v === 'object') Object.values(v).forEach(walk);
})([pkg.exports, pkg.main, pkg.types]);
for (const t of targets) {
  if (!fs.existsSync(path.join(pkgDir, t))) throw new Error(`package-layout: package.json names ${t}, which the package lacks`);
}
